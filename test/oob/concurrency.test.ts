/**
 * Invariants under concurrency, on SQLite, PostgreSQL and MariaDB (security B.2
 * #2, #20, #23): parallel first logins create exactly one token and send one
 * message (enrollment_claims primary key); parallel triggers for one token send
 * one message (compare-and-set on the token row); parallel answers with the same
 * code succeed exactly once (conditional close of the challenge). otppin=1 puts an
 * LDAP bind between reading and writing, so the requests really overlap.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { wireOutOfBand } from '../../src/services.ts';
import { availableDialects } from '../helpers/db.ts';
import { haveBinary } from '../helpers/require.ts';
import { codeIn, mailBody, settle, startOobEnv, type OobApp, type OobEnv } from './harness.ts';

const skipLdap = haveBinary('/usr/sbin/slapd', 'slapd');
let env: OobEnv;
before(async () => {
  if (!skipLdap) env = await startOobEnv();
});
after(async () => {
  await env?.close();
});

for (const { dialect, skip } of await availableDialects()) {
  describe(`concurrency on ${dialect}`, { skip: skipLdap || skip }, () => {
    const withApp = (fn: (app: OobApp) => Promise<void>) => env.withApp(fn, { dialect });

    test('10 parallel first logins create exactly one token and send one message', () => withApp(async (app) => {
      await app.policy('ae', 'enrollment', 'autoenrollment=email');
      // Hold every enrollment at the claim until all 10 have passed their checks, so they
      // really race on the enrollment_claims primary key (LDAP latency would spread them out).
      let waiting = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const { autoenrollment } = wireOutOfBand(app.services);
      autoenrollment.beforeClaim = async () => {
        if (++waiting === 10) release();
        // bounded, so a claim that never comes fails the assertion below instead of hanging
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([gate, new Promise((r) => (timer = setTimeout(r, 3000)))]);
        clearTimeout(timer);
      };
      const results = await Promise.all(Array.from({ length: 10 }, () => app.check({ user: 'alice', pass: 'alicepw' })));
      for (const r of results) assert.equal(r.json.result.value, false);
      assert.equal(waiting, 10, 'all 10 reached the claim');
      const tids = new Set(results.map((r) => r.json.detail?.transactionid));
      assert.equal(tids.size, 1, `all answers name the same challenge: ${[...tids].join(',')}`);
      const messages = results.map((r) => r.json.detail?.message);
      assert.equal(messages.filter((m) => m === 'e-mail sent successfully').length, 1, messages.join(' | '));
      assert.equal(messages.filter((m) => m === 'e-mail with otp already submitted').length, 9, messages.join(' | '));
      await settle(app);
      assert.equal((await app.tokensOf('alice')).length, 1);
      assert.equal((await app.services.db.kysely.selectFrom('enrollment_claims').selectAll().execute()).length, 1);
      assert.equal(app.mails().length, 1);
      const code = codeIn(mailBody(app.mails()[0]!));
      assert.equal((await app.check({ user: 'alice', pass: `alicepw${code}` })).json.result.value, true);
    }));

    test('parallel triggers for one token send one message', () => withApp(async (app) => {
      await app.t.admin('/admin/init', { type: 'sms', phone: '+12015550101', user: 'alice' });
      await app.policy('pin', 'authentication', 'otppin=1');
      const results = await Promise.all(Array.from({ length: 8 }, () => app.check({ user: 'alice', pass: 'alicepw' })));
      const tids = new Set(results.map((r) => r.json.detail?.transactionid));
      assert.equal(tids.size, 1, [...tids].join(','));
      assert.equal(results.filter((r) => r.json.detail.message === 'sms submitted').length, 1);
      await settle(app);
      assert.equal(app.sms().length, 1);
      assert.equal((await app.services.db.kysely.selectFrom('challenges').selectAll().execute()).length, 1);
    }));

    test('parallel answers with the right code: exactly one succeeds', () => withApp(async (app) => {
      await app.t.admin('/admin/init', { type: 'sms', phone: '+12015550101', user: 'alice' });
      await app.policy('pin', 'authentication', 'otppin=1');
      const tid = (await app.check({ user: 'alice', pass: 'alicepw' })).json.detail.transactionid;
      const code = await app.smsCode();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
        app.check(i % 2 ? { user: 'alice', pass: `alicepw${code}`, transactionid: tid } : { user: 'alice', pass: `alicepw${code}` })));
      assert.equal(results.filter((r) => r.json.result.value === true).length, 1, JSON.stringify(results.map((r) => r.json.result.value)));
    }));
  });
}
