import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createEmailTemplates, EMAIL_TEMPLATES_DIR } from './email-templates.js'

const templates = createEmailTemplates({ shopName: 'Tea & Co', shopUrl: 'https://shop.example', cache: false })

const line = { quantity: 2, name: 'Green <tea>', variant: '100 g', sku: 'TEA-1', amount: '$10.00' }
/** Sample data for every email under templates/email/ (a new template without sample fails below). */
const SAMPLES: Record<string, Record<string, unknown>> = {
  verify_email: { first_name: 'Ada', link: 'https://shop.example/verify-email?token=abc&x=1', code: 'abc', hours: 48 },
  password_reset: { first_name: '', link: 'https://shop.example/reset-password?token=abc', code: 'abc', minutes: 60 },
  order_confirmation: {
    number: 'ORD-7F3K9Q2M',
    link: 'https://shop.example/orders/ORD-7F3K9Q2M',
    lines: [line],
    total_rows: [['Subtotal', '$10.00'], ['Shipping', '$5.00'], ['Tax', '$0.00'], ['Total', '$15.00']],
    ship_to: 'Ada Lovelace, 1 Main St, 94105 San Francisco, US',
  },
  order_shipped: { number: 'ORD-7F3K9Q2M', link: 'https://shop.example/orders/ORD-7F3K9Q2M', lines: [line], ship_to: 'Ada, 1 Main St', tracking_number: '1Z999AA10123456784' },
  payment_failed: { number: 'ORD-7F3K9Q2M', reason: 'Your card was declined.', link: 'https://shop.example/orders/ORD-7F3K9Q2M' },
  refund: { number: 'ORD-7F3K9Q2M', amount: '$15.00', explanation: 'Your order was cancelled, so we refunded your payment.', link: 'https://shop.example/orders/ORD-7F3K9Q2M' },
  marketing: { subject: 'Spring sale', first_name: 'Ada', paragraphs: ['Everything 20 % off.', 'Until Sunday.'], link: 'https://shop.example/sale', link_label: 'Shop the sale', unsubscribe_url: 'https://api.example/u?token=t' },
}

describe('email templates', () => {
  it('has sample data here for every template folder, so each one is rendered by this test', async () => {
    const folders = (await readdir(EMAIL_TEMPLATES_DIR, { withFileTypes: true })).filter((entry) => entry.isDirectory() && !entry.name.startsWith('_')).map((entry) => entry.name)
    expect(folders.sort()).toEqual(Object.keys(SAMPLES).sort())
  })

  it.each(Object.entries(SAMPLES))('renders %s: a one-line subject, text and HTML in the shared layout, nothing undefined', (name, data) => {
    const email = templates.render(name, data)
    expect(email.subject).toMatch(/^\S.*\S$/)
    expect(email.subject).not.toContain('\n')
    for (const body of [email.text, email.html]) {
      expect(body).not.toMatch(/undefined|null|\[object Object\]/)
      expect(body).toContain('https://shop.example')
    }
    expect(email.text).toContain('\n-- \nTea & Co · https://shop.example\n')
    expect(email.html).toMatch(/^<!DOCTYPE html>/)
    expect(email.html).toContain(`<title>${email.subject.replace(/&/g, '&amp;')}</title>`)
    expect(email.html).toContain('Tea &amp; Co')
  })

  it('escapes values in HTML and prints them as they are in text', () => {
    const email = templates.render('order_confirmation', SAMPLES.order_confirmation!)
    expect(email.html).toContain('Green &lt;tea&gt;')
    expect(email.html).not.toContain('<tea>')
    expect(email.text).toContain('  2 × Green <tea> (100 g, TEA-1)  $10.00\n')
    const verify = templates.render('verify_email', SAMPLES.verify_email!)
    expect(verify.html).toContain('href="https://shop.example/verify-email?token=abc&amp;x=1"')
    expect(verify.text).toContain('\nhttps://shop.example/verify-email?token=abc&x=1\n')
  })

  it('keeps the plain text laid out line by line (totals aligned, one line per item)', () => {
    const email = templates.render('order_confirmation', SAMPLES.order_confirmation!)
    expect(email.text).toContain('Subtotal  $10.00\nShipping  $5.00\nTax       $0.00\nTotal     $15.00\n')
    expect(email.subject).toBe('Your Tea & Co order ORD-7F3K9Q2M is confirmed')
  })

  it('shows the tracking number when the order has one, and no empty line for it when not', () => {
    expect(templates.render('order_shipped', SAMPLES.order_shipped!).text).toContain('Tracking number: 1Z999AA10123456784\n')
    const without = templates.render('order_shipped', { ...SAMPLES.order_shipped!, tracking_number: null })
    expect(without.text).not.toContain('Tracking number')
    expect(without.text).toContain('is on its way.\n\n  2 × ')
  })

  it('puts the unsubscribe link in the footer of marketing mail only', () => {
    const marketing = templates.render('marketing', SAMPLES.marketing!)
    expect(marketing.text).toContain('Unsubscribe: https://api.example/u?token=t')
    expect(marketing.html).toContain('<a href="https://api.example/u?token=t"')
    expect(templates.render('refund', SAMPLES.refund!).text).not.toContain('Unsubscribe')
  })

  describe("a shop's own templates directory (EMAIL_TEMPLATES_DIR)", () => {
    const dirs: string[] = []
    afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))))

    it('renders from it, and without cache an edited template shows on the next render', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'templates-'))
      dirs.push(dir)
      await mkdir(join(dir, 'hello'))
      await writeFile(join(dir, 'hello', 'subject.eta'), 'Hi <%= it.name %>\n')
      await writeFile(join(dir, 'hello', 'text.eta'), 'Text <%= it.name %>')
      await writeFile(join(dir, 'hello', 'html.eta'), '<p><%= it.name %></p>')
      const own = createEmailTemplates({ shopName: 'S', shopUrl: 'https://s.example', cache: false, directory: dir })
      expect(own.render('hello', { name: '<Ada>' })).toEqual({ subject: 'Hi <Ada>', text: 'Text <Ada>\n', html: '<p>&lt;Ada&gt;</p>' })
      await writeFile(join(dir, 'hello', 'text.eta'), 'Changed <%= it.name %>')
      expect(own.render('hello', { name: 'Ada' }).text).toBe('Changed Ada\n')
    })
  })
})
