/**
 * The SSRF guard of outgoing webhooks: a receiver URL must not make the shop reach its own
 * network. Only public unicast addresses pass; the address is checked where the connection is
 * made (a `lookup` for node:http), so a name that resolves to a private address, even only on the
 * second resolution (DNS rebinding), is refused too.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * Why an address may not be reached (the range's name: loopback, private, linkLocal, …), or null
 * for a public address. IPv4 inside IPv6 (mapped, translated) is judged by its IPv4 address.
 */
export function refusedRange(address: string): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6
  try {
    parsed = ipaddr.parse(address)
  } catch {
    return 'invalid'
  }
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6
    if (v6.isIPv4MappedAddress() || v6.range() === 'rfc6145') {
      const inner = refusedRange(new ipaddr.IPv4(v6.toByteArray().slice(12)).toString())
      return inner && `ipv4Mapped ${inner}`
    }
  }
  const range = parsed.range()
  if (range !== 'unicast') return range
  // ::a.b.c.d (IPv4-compatible, deprecated): ipaddr.js calls it unicast, but it is no public host.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((part) => part === 0)) return 'ipv4Compatible'
  return null
}

/** Host names that mean this machine, refused before any lookup. */
export const isLocalHostName = (hostname: string) => {
  const name = hostname.toLowerCase().replace(/\.$/, '')
  return name === 'localhost' || name.endsWith('.localhost')
}

/** A URL host as node:net sees it: `[::1]` → `::1`. */
export const bareHost = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1')

/**
 * Why a receiver URL's host is refused without a lookup (localhost, a private IP literal), or
 * null: a name is judged where it is resolved, by `guardedLookup`.
 */
export function hostRefusal(hostname: string): string | null {
  const host = bareHost(hostname)
  if (isLocalHostName(host)) return `${host} is this machine`
  if (isIP(host) === 0) return null
  const range = refusedRange(host)
  return range && `${host} is a ${range} address`
}

export class RefusedAddressError extends Error {
  override name = 'RefusedAddressError'
  readonly code = 'ERR_WEBHOOK_ADDRESS_REFUSED'
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/**
 * A `lookup` for node:http(s) that resolves as usual and keeps only public addresses; when none
 * is left the connection fails with RefusedAddressError. Node calls it with `all: true` when it
 * tries several addresses (autoSelectFamily), else for one.
 */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, [])
    const allowed = addresses.filter((entry) => refusedRange(entry.address) === null)
    if (allowed.length === 0) {
      const first = addresses[0]
      const why = first ? `${hostname} resolves to ${first.address}, a ${refusedRange(first.address)} address` : `${hostname} has no address`
      return callback(new RefusedAddressError(`Refused: ${why}`), [])
    }
    if (options.all) return callback(null, allowed)
    callback(null, allowed[0]!.address, allowed[0]!.family)
  })
}
