/** pino: JSON in production, pretty in development; secrets never reach a log line. */
import type { FastifyBaseLogger } from 'fastify'
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino'
import type { Settings } from '../config/index.js'

/** Paths whose values are replaced by "[redacted]" wherever they appear in a logged object. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-service-token"]',
  'req.headers["x-cart-token"]',
  'req.headers["stripe-signature"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.new_password',
  '*.current_password',
  '*.token',
  '*.access',
  '*.refresh',
  '*.secret',
  '*.client_secret',
  '*.authorization',
  'password',
  'token',
  'secret',
]

/** What code logs through: a pino logger or a request's child of it. */
export type Logger = FastifyBaseLogger

export function createLogger(settings: Pick<Settings, 'log'>, destination?: DestinationStream): PinoLogger {
  const options = {
    level: settings.log.level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: undefined,
  }
  if (destination) return pino(options, destination)
  if (settings.log.pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true } } })
  }
  return pino(options)
}
