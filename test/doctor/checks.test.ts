import {describe, expect, it} from 'vitest'
import {doctorReport} from '../../src/doctor/checks.js'
import {nodeVersionCheck} from '../../src/doctor/local.js'
import {clockCheck, tlsCheck} from '../../src/doctor/target.js'

const DAY = 86_400_000
const now = Date.parse('2026-06-01T00:00:00Z')
const probe = (validTo: number, extra: Partial<Parameters<typeof tlsCheck>[0]> = {}) => ({authorized: true, validFrom: now - 30 * DAY, validTo, subject: 'localhost', issuer: 'localhost', host: '127.0.0.1', ...extra})

describe('doctor rules', () => {
  it('node-version: below the engines range fails, at or above it passes', () => {
    expect(nodeVersionCheck('20.11.9', '>=20.12').status).toBe('fail')
    expect(nodeVersionCheck('19.9.0', '>=20.12').status).toBe('fail')
    expect(nodeVersionCheck('20.12.0', '>=20.12').status).toBe('ok')
    expect(nodeVersionCheck('22.1.0', '>=20.12').status).toBe('ok')
    expect(nodeVersionCheck('20.20.2', '^20').status).toBe('warn')
  })

  it('clock: ok within 60 s, warn beyond, fail beyond the 5 min the node allows, either direction', () => {
    const limit = 5 * 60_000
    expect(clockCheck(1500, limit, 60_000).status).toBe('ok')
    expect(clockCheck(-61_000, limit, 60_000)).toMatchObject({status: 'warn', details: {offsetMs: -61_000}})
    expect(clockCheck(-61_000, limit, 60_000).message).toContain('61.0 s behind')
    expect(clockCheck(limit + 1, limit, 60_000).status).toBe('fail')
    expect(clockCheck(-(limit + 1), limit, 60_000).status).toBe('fail')
    expect(clockCheck(Number.NaN, limit, 60_000).status).toBe('fail')
  })

  it('tls: expired, not yet valid and untrusted fail; expiring within the window warns', () => {
    expect(tlsCheck(probe(now + 90 * DAY), 14, now)).toMatchObject({status: 'ok', details: {daysLeft: 90}})
    expect(tlsCheck(probe(now + 13 * DAY), 14, now)).toMatchObject({status: 'warn', message: expect.stringContaining('expires in 13 days')})
    expect(tlsCheck(probe(now - DAY), 14, now)).toMatchObject({status: 'fail', message: expect.stringContaining('expired on 2026-05-31')})
    expect(tlsCheck(probe(now + 90 * DAY, {validFrom: now + DAY}), 14, now).status).toBe('fail')
    const untrusted = tlsCheck(probe(now + 90 * DAY, {authorized: false, authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT'}), 14, now)
    expect(untrusted).toMatchObject({status: 'fail', hint: expect.stringContaining('ca: <file>')})
    const wrongHost = tlsCheck(probe(now + 90 * DAY, {authorized: false, authorizationError: 'ERR_TLS_CERT_ALTNAME_INVALID'}), 14, now)
    expect(wrongHost.hint).toContain('subjectAltName names 127.0.0.1')
    expect(tlsCheck(Object.assign(new Error('connect ECONNREFUSED'), {code: 'ECONNREFUSED'}), 14, now).status).toBe('skip')
    expect(tlsCheck(Object.assign(new Error('wrong version number'), {code: 'ERR_SSL_WRONG_VERSION_NUMBER'}), 14, now).status).toBe('fail')
  })

  it('the exit code follows the worst status: fail → 1, warn → 0 (1 with strict), skip never counts', () => {
    const check = (status: 'ok' | 'warn' | 'fail' | 'skip') => ({id: 'clock' as const, status, message: status})
    expect(doctorReport([check('ok'), check('skip')])).toMatchObject({ok: true, exitCode: 0, summary: {ok: 1, warn: 0, fail: 0, skip: 1}})
    expect(doctorReport([check('ok'), check('warn')]).exitCode).toBe(0)
    expect(doctorReport([check('ok'), check('warn')], true).exitCode).toBe(1)
    expect(doctorReport([check('warn'), check('fail')])).toMatchObject({ok: false, exitCode: 1})
  })
})
