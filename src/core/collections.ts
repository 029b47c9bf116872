/** Small helpers on arrays and maps that the standard library of Node 20 lacks. */

/** Items by key, in first-seen order (Map.groupBy arrived after Node 20). */
export function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const item of items) {
    const key = keyOf(item)
    const group = groups.get(key)
    if (group) group.push(item)
    else groups.set(key, [item])
  }
  return groups
}
