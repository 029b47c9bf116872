/** What a receiver URL must be: http(s), no credentials, and (unless allowed) not this machine or a private network. */
import { ValidationError } from '../../core/errors.js'
import { hostRefusal } from './address-guard.js'

export const URL_MAX_LENGTH = 2048

/** The URL as it will be called (normalised by the WHATWG parser), or a 422 on `url`. */
export function checkReceiverUrl(text: string, allowPrivate: boolean): string {
  const refuse = (message: string): never => {
    throw new ValidationError('The webhook URL cannot be used.', { url: [message] })
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return refuse('Not a URL.')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') refuse('Only http:// and https:// URLs are called.')
  // Credentials in the URL would be stored and shown in clear; the signature authenticates the shop.
  if (url.username || url.password) refuse('No user name or password in the URL.')
  if (!url.hostname) refuse('The URL needs a host.')
  if (!allowPrivate) {
    const refusal = hostRefusal(url.hostname)
    if (refusal) refuse(`Private, loopback and link-local addresses are refused (${refusal}).`)
  }
  // The parser may have decoded or expanded it (an IPv4 in decimal, IDN): the stored form must still fit.
  if (url.href.length > URL_MAX_LENGTH) refuse(`At most ${URL_MAX_LENGTH} characters.`)
  return url.href
}
