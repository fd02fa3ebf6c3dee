// Invariant: an infrastructure error is never a failed attempt and never a plain "wrong
// password". While the directory cannot be asked (slapd stopped, or StartTLS refused by a
// server without it under EnforceTLS), /validate/check answers error 2004, RADIUS stays silent,
// and neither the token's fail counter nor the account's failure count moves: a short outage,
// even under a burst of logins, locks nobody out.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hotp } from '../../src/otp/hotp.ts';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, SLAPD_BIN, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { haveBinary } from '../helpers/require.ts';
import { startOtpd, type RunningOtpd } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');
const SECRET = 'outage-shared-secret';
const aliceKey = (resolver: string) => ({ realm: 'dir', userKey: `${resolver}/uid=alice,${FIXTURE_BASE}`, login: 'alice' });

describe('an outage spends no attempt', { skip: haveBinary(SLAPD_BIN, 'slapd') || haveBinary('radclient', 'freeradius-utils') }, () => {
  let otpd: RunningOtpd;
  let ldap: Slapd;
  const admin = (path: string, form: Record<string, string>) => otpd.admin(path, form);
  const check = (form: Record<string, string>) => otpd.post('/validate/check', form);
  const rad = (user: string, password: string) => otpd.radius(user, password, { timeoutSeconds: 3, retries: 1 });
  const resolver = (name: string, enforceTls: string, update = true) => admin('/system/setResolver', {
    name, ...(update ? { previous_name: name } : {}), type: 'ldapresolver', PRESET: 'openldap', LDAPURI: ldap.url, LDAPBASE: FIXTURE_BASE,
    BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW, EnforceTLS: enforceTls, UIDTYPE: 'DN', TIMEOUT: '2', BLOCK_SECONDS: '1',
  });
  const failCount = async () => (await otpd.running.services.tokens.repository.bySerial('DIR1'))!.failCount;
  const accountFails = async (resolverName: string) => (await otpd.running.services.accountAttempts.state(aliceKey(resolverName)))?.failCount ?? 0;

  before(async () => {
    ldap = await startSlapd();
    otpd = await startOtpd({ radiusSecret: SECRET, radiusRealm: 'dir' });
    assert.equal((await resolver('directory', 'False', false)).result.value, true);
    assert.equal((await admin('/system/setRealm', { realm: 'dir', resolvers: 'useridresolver.LDAPIdResolver.IdResolver.directory' })).result.value, true);
    await admin('/system/setDefaultRealm', { realm: 'dir' });
    await admin('/system/setConfig', { key: 'UserCacheTTL', value: '0' });
    assert.equal((await admin('/admin/init', { type: 'hmac', serial: 'DIR1', otpkey: KEY, user: 'alice', pin: 'pin' })).result.value, true);
    await admin('/admin/set', { serial: 'DIR1', MaxFailCount: '3' });
    await admin('/system/setPolicy', { name: 'pw', scope: 'authentication', action: 'otppin=1', realm: '*', user: '*', client: '*' });
  });
  after(async () => {
    await otpd?.stop();
    await ldap?.dispose();
  });

  test('stopped slapd: 3 answers and a burst of 10 are error 2004, RADIUS is silent, nothing is counted', async () => {
    assert.equal((await check({ user: 'alice', pass: `alicepw${hotp(seed, 0)}` })).result.value, true);
    await ldap.stop();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await check({ user: 'alice', pass: `alicepw${hotp(seed, 1)}` });
        assert.equal(r.result.status, false);
        assert.equal(r.result.error.code, 2004);
      }
      const burst = await Promise.all(Array.from({ length: 10 }, () => check({ user: 'alice', pass: `alicepw${hotp(seed, 1)}` })));
      for (const r of burst) assert.equal(r.result.error?.code, 2004, JSON.stringify(r));
      const radius = await rad('alice', `alicepw${hotp(seed, 1)}`);
      assert.equal(radius.reply, undefined, `no RADIUS answer during the outage: ${radius.output}`);
      assert.equal(await failCount(), 0, 'token attempts not spent');
      assert.equal(await accountFails('directory'), 0, 'account attempts not spent');
    } finally {
      await ldap.restart();
    }
    // the circuit breaker may still skip the server for its block time
    await waitFor(async () => (await check({ user: 'alice', pass: `alicepw${hotp(seed, 1)}` })).result.value === true, {
      what: 'the login to work after the outage, with MaxFail 3 and 14 outage answers behind it', timeoutMs: 40_000, intervalMs: 250,
    });
  });

  test('StartTLS refused (EnforceTLS against a server without StartTLS): error 2004, RADIUS silent, nothing counted', async () => {
    const mark = (await otpd.running.services.db.kysely.selectFrom('audit').select('id').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow()).id;
    const set = await resolver('directory', 'True');
    assert.equal(set.result.value, true, JSON.stringify(set));
    try {
      for (let i = 0; i < 4; i++) {
        const r = await check({ user: 'alice', pass: `alicepw${hotp(seed, 2)}` });
        assert.equal(r.result.status, false, JSON.stringify(r));
        assert.equal(r.result.error.code, 2004, 'a store failure, not "wrong password"');
      }
      const radius = await rad('alice', `alicepw${hotp(seed, 2)}`);
      assert.equal(radius.reply, undefined, `no Access-Reject: ${radius.output}`);
      const audit = await otpd.running.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'validate/check').where('id', '>', mark).execute();
      assert.equal(audit.length, 4);
      for (const row of audit) assert.equal(row.action_detail, 'user store unavailable');
      assert.ok(audit.some((row) => /does not support StartTLS: use ldaps:\/\/ or set EnforceTLS off/.test(row.info)), 'the reason names the fix');
      assert.equal(await failCount(), 0);
      assert.equal(await accountFails('directory'), 0);
      const test = await admin('/system/testResolver', { name: 'directory' });
      assert.match(JSON.stringify(test), /StartTLS/);
    } finally {
      assert.equal((await resolver('directory', 'False')).result.value, true);
    }
    // the login works again once the breaker's BLOCK_SECONDS have passed
    await waitFor(async () => (await check({ user: 'alice', pass: `alicepw${hotp(seed, 2)}` })).result.value === true, {
      what: 'the login to work once the circuit breaker lets the server back', timeoutMs: 5000, intervalMs: 100,
    });
  });
});
