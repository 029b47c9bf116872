/** The SSRF guard's address classification (IPv4, IPv6, IPv4 inside IPv6) and its lookup. */
import type { LookupAddress } from 'node:dns'
import { describe, expect, it } from 'vitest'
import { guardedLookup, hostRefusal, refusedRange } from './address-guard.js'

describe(refusedRange.name, () => {
  it.each([
    ['8.8.8.8'],
    ['93.184.216.34'],
    ['2606:4700:4700::1111'],
    ['2a00:1450:4001:82b::200e'],
    ['::ffff:8.8.8.8'],
  ])('lets the public address %s through', (address) => {
    expect(refusedRange(address)).toBeNull()
  })

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.10', 'reserved'],
  ])('refuses the IPv4 address %s (%s)', (address, range) => {
    expect(refusedRange(address)).toBe(range)
  })

  it.each([
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fe80::1%eth0', 'linkLocal'],
    ['fd12:3456:789a::1', 'uniqueLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
  ])('refuses the IPv6 address %s (%s)', (address, range) => {
    expect(refusedRange(address)).toBe(range)
  })

  it.each([
    ['::ffff:127.0.0.1', 'ipv4Mapped loopback'],
    ['::ffff:7f00:1', 'ipv4Mapped loopback'],
    ['::ffff:10.1.2.3', 'ipv4Mapped private'],
    ['::ffff:169.254.169.254', 'ipv4Mapped linkLocal'],
    ['::ffff:0:192.168.0.1', 'ipv4Mapped private'],
    ['::7f00:1', 'ipv4Compatible'],
  ])('judges IPv4 inside IPv6 by the IPv4 address: %s', (address, range) => {
    expect(refusedRange(address)).toBe(range)
  })

  it('refuses ::127.0.0.1 however the parser reads it (mapped or compatible)', () => {
    expect(refusedRange('::127.0.0.1')).toMatch(/^ipv4(Mapped loopback|Compatible)$/)
  })

  it('refuses what is not an address at all', () => {
    expect(refusedRange('not-an-ip')).toBe('invalid')
  })
})

describe(hostRefusal.name, () => {
  it('refuses localhost and private literals as URL hosts, and leaves names to the lookup', () => {
    expect(hostRefusal('localhost')).toMatch(/this machine/)
    expect(hostRefusal('api.localhost')).toMatch(/this machine/)
    expect(hostRefusal('LOCALHOST.')).toMatch(/this machine/)
    expect(hostRefusal('[::1]')).toBe('::1 is a loopback address')
    expect(hostRefusal('10.0.0.1')).toBe('10.0.0.1 is a private address')
    expect(hostRefusal('example.com')).toBeNull()
    expect(hostRefusal('8.8.8.8')).toBeNull()
  })
})

describe(guardedLookup.name, () => {
  const lookup = (hostname: string, all: boolean) =>
    new Promise<{ err: Error | null; address: string | LookupAddress[] }>((resolve) => guardedLookup(hostname, { all }, (err, address) => resolve({ err, address })))

  it('refuses a name that resolves only to loopback, whether Node asks for one address or all', async () => {
    for (const all of [false, true]) {
      const { err } = await lookup('localhost', all)
      expect(err?.name).toBe('RefusedAddressError')
      expect(err?.message).toMatch(/^Refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address$/)
    }
  })

  it('answers a public IP as it is, in the shape Node asked for', async () => {
    expect(await lookup('8.8.8.8', false)).toEqual({ err: null, address: '8.8.8.8' })
    expect(await lookup('8.8.8.8', true)).toEqual({ err: null, address: [{ address: '8.8.8.8', family: 4 }] })
  })
})
