/**
 * Emails from templates: `templates/email/<name>/{subject,text,html}.eta`, rendered with Eta. Both
 * bodies sit in the shared layouts of `templates/email/_layout/` (shop name, shop URL, and the
 * unsubscribe link of marketing mail). The HTML escapes every value it prints; the plain text does
 * not, because it is not HTML. Apps pass ready-made strings (formatted money, links): templates hold
 * wording and markup, not logic.
 */
import { Eta } from 'eta'
import { fromProjectRoot } from '../config/paths.js'

export interface RenderedEmail {
  subject: string
  text: string
  html: string
}

export interface EmailTemplates {
  /** Renders one email; `data` is the template's `it` (plus `shop`, and `unsubscribe_url` when given). */
  render(name: string, data: Record<string, unknown>): RenderedEmail
}

export interface EmailTemplateOptions {
  shopName: string
  shopUrl: string
  /** Keep compiled templates (production); off, an edited template shows on the next email. */
  cache: boolean
  directory?: string
}

export const EMAIL_TEMPLATES_DIR = fromProjectRoot('templates/email')

export function createEmailTemplates(options: EmailTemplateOptions): EmailTemplates {
  const views = options.directory ?? EMAIL_TEMPLATES_DIR
  // No automatic trimming: plain text keeps its line breaks; `-%>` drops one after a code tag.
  const html = new Eta({ views, cache: options.cache, autoEscape: true, autoTrim: false })
  const text = new Eta({ views, cache: options.cache, autoEscape: false, autoTrim: false })
  const shop = { name: options.shopName, url: options.shopUrl }

  return {
    render(name, data) {
      const it = { ...data, shop }
      // One line, whatever the template's line breaks: a header cannot hold a newline.
      const subject = text.render(`${name}/subject`, it).replace(/\s+/g, ' ').trim()
      return { subject, text: `${text.render(`${name}/text`, it).trim()}\n`, html: html.render(`${name}/html`, { ...it, subject }) }
    },
  }
}
