// Invariant: when the directory cannot be asked, validation never says "authenticated" and
// never hangs: /validate/check answers the error envelope with code 2004 "user store
// unavailable" (simplecheck ":-("), quickly; after slapd is back, logins work again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hotp } from '../../src/otp/hotp.ts';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, SLAPD_BIN, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');

describe('directory outage during validation', { skip: haveBinary(SLAPD_BIN, 'slapd') }, () => {
  let t: TestApp;
  let ldap: Slapd;
  before(async () => {
    [t, ldap] = await Promise.all([startTestApp({ env: { OTPD_LOG_LEVEL: 'silent' } }), startSlapd()]);
    const form = {
      name: 'directory', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: ldap.url, LDAPBASE: FIXTURE_BASE,
      BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '2', BLOCK_SECONDS: '1',
    };
    const set = await t.admin('/system/setResolver', form);
    assert.equal(set.json.result.value, true, set.body);
    assert.equal((await t.admin('/system/setRealm', { realm: 'dir', resolvers: 'useridresolver.LDAPIdResolver.IdResolver.directory' })).json.result.value, true);
    await t.admin('/system/setDefaultRealm', { realm: 'dir' });
    await t.admin('/system/setConfig', { key: 'UserCacheTTL', value: '0' });
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'DIR1', otpkey: KEY, user: 'alice', pin: 'pin' })).json.result.value, true);
    await t.admin('/system/setPolicy', { name: 'pw', scope: 'authentication', action: 'otppin=1', realm: '*', user: '*', client: '*' });
  });
  after(async () => {
    await t?.close();
    await ldap?.dispose();
  });

  test('stopped slapd: error 2004 in the envelope within the timeout, never value true', async () => {
    assert.equal((await t.post('/validate/check', { user: 'alice', pass: `alicepw${hotp(seed, 0)}` })).json.result.value, true);
    await ldap.stop();
    const started = Date.now();
    const res = await t.post('/validate/check', { user: 'alice', pass: `alicepw${hotp(seed, 1)}` });
    assert.ok(Date.now() - started < 6000, 'bounded by the resolver timeout');
    assert.equal(res.json.result.status, false, res.body);
    assert.equal(res.json.result.error.code, 2004);
    assert.equal(res.json.result.error.message, 'ERR2004: user store unavailable');
    assert.ok(!res.body.includes('127.0.0.1'), 'no internals to the caller');
    assert.equal((await t.post('/validate/simplecheck', { user: 'alice', pass: `alicepw${hotp(seed, 1)}` })).body, ':-(');
    const audit = await t.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'validate/check').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    assert.equal(audit.action_detail, 'user store unavailable');
    assert.equal(audit.success, '0');
    await ldap.restart();
    // the circuit breaker may still skip the server for its block time: wait for it to close
    await waitFor(async () => (await t.post('/validate/check', { user: 'alice', pass: `alicepw${hotp(seed, 1)}` })).json.result.value === true, {
      what: 'logins to work again once the directory is back', timeoutMs: 40_000, intervalMs: 250,
    });
  });
});
