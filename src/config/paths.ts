import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The checkout (or the deployed folder): src/config/ and dist/config/ both sit two levels below it. */
export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Relative paths in settings mean the project root, as `.env` does, whatever the working directory. */
export function fromProjectRoot(path: string): string {
  return resolve(projectRoot, path)
}
