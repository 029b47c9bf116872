/** pino: JSON in production, pretty in development; secrets never reach a log line. */
import type { FastifyBaseLogger } from 'fastify'
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino'
import type { Settings } from '../config/index.js'

/** Paths whose values are replaced by "[redacted]" wherever they appear in a logged object. */
/** Accessors (pino's path syntax) of headers that carry credentials. */
const SECRET_HEADERS = ['.authorization', '.cookie', '["set-cookie"]', '["x-service-token"]', '["x-cart-token"]', '["stripe-signature"]']
const SECRET_FIELDS = ['password', 'new_password', 'current_password', 'token', 'access', 'refresh', 'secret', 'client_secret', 'authorization']

/**
 * Paths whose values are replaced by "[redacted]": secret headers wherever headers are logged,
 * and secret fields at the top level and up to two levels down (pino wildcards match one level).
 */
export const REDACTED_PATHS = [
  ...['req.headers', 'res.headers', 'headers', '*.headers'].flatMap((at) => SECRET_HEADERS.map((accessor) => at + accessor)),
  ...SECRET_FIELDS.flatMap((name) => [name, `*.${name}`, `*.*.${name}`]),
]

/** What code logs through: a pino logger or a request's child of it. */
export type Logger = FastifyBaseLogger

export function createLogger(settings: Pick<Settings, 'log'>, destination?: DestinationStream): PinoLogger {
  const options = {
    level: settings.log.level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
  }
  if (destination) return pino(options, destination)
  if (settings.log.pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true } } })
  }
  return pino(options)
}
