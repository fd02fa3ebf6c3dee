// The validation flow of spec 2 against a real flat-file user store: otppin modes 0-3,
// passthru vs passOnNoToken, authorize by client, user@realm parsing, HMAC challenge-response
// bound to its user, and detail_on_fail. Every case asserts the answer and the audit reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { hotp } from '../../src/otp/hotp.ts';

const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');
const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw], { encoding: 'utf8' }).trim();

describe('validation flow with a flat-file user store', () => {
  let t: TestApp;
  let counter = 0;
  const next = () => hotp(seed, counter++);
  const check = (form: Record<string, string>) => t.post('/validate/check', form);
  const lastAudit = async () => (await t.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'validate/check').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow());
  const policy = async (name: string, scope: string, action: string, extra: Record<string, string> = {}) => {
    const r = await t.admin('/system/setPolicy', { name, scope, action, realm: '*', user: '*', client: '*', ...extra });
    assert.equal(r.json.result.status, true, JSON.stringify(r.json));
  };
  const dropPolicy = (name: string) => t.admin('/system/delPolicy', { name });

  before(async () => {
    t = await startTestApp();
    const file = join(t.dataDir, 'users');
    writeFileSync(file, [
      `alice:${crypt('AlicePw1')}:1001:1001:Alice Anders,,+4930111,+4930112,alice@example.org:/home/alice:/bin/sh`,
      `bob:${crypt('BobPw1')}:1002:1002:Bob Berg,,,,bob@example.org:/home/bob:/bin/sh`,
      `carol:${crypt('CarolPw1')}:1003:1003:Carol:/home/carol:/bin/sh`,
      `dave.x:${crypt('DavePw1')}:1004:1004:Dave:/home/dave:/bin/sh`,
    ].join('\n') + '\n');
    assert.equal((await t.admin('/system/setResolver', { name: 'files', type: 'passwdresolver', fileName: file })).json.result.value, true);
    assert.equal((await t.admin('/system/setRealm', { realm: 'Staff', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.files' })).json.result.value, true);
    assert.equal((await t.admin('/system/setDefaultRealm', { realm: 'staff' })).json.result.value, true);
    const init = await t.admin('/admin/init', { type: 'hmac', serial: 'ALICE1', otpkey: KEY, pin: 'tokpin', user: 'alice', realm: 'staff' });
    assert.equal(init.json.result.value, true, JSON.stringify(init.json));
    await t.admin('/admin/set', { serial: 'ALICE1', MaxFailCount: '100' });
  });
  after(async () => t?.close());

  test('otppin 0 (default): token PIN + OTP; user@realm and realm= parsing', async () => {
    assert.equal((await check({ user: 'alice', pass: `tokpin${next()}` })).json.result.value, true);
    assert.equal((await check({ user: 'alice@staff', pass: `tokpin${next()}` })).json.result.value, true);
    assert.equal((await check({ user: 'alice', realm: 'STAFF', pass: `tokpin${next()}` })).json.result.value, true);
    assert.equal((await check({ user: 'alice', pass: `AlicePw1${next()}` })).json.result.value, false);
    assert.equal((await lastAudit()).action_detail, 'wrong otp pin -1');
    assert.equal((await check({ user: 'nobody', pass: 'x123456' })).json.result.value, false);
    assert.equal((await lastAudit()).action_detail, 'User not found');
    assert.equal((await check({ user: 'alice@otherrealm', pass: `tokpin${hotp(seed, counter)}` })).json.result.value, false);
  });

  test('otppin 1: the directory password + OTP', async () => {
    await policy('pin1', 'authentication', 'otppin=1');
    try {
      assert.equal((await check({ user: 'alice', pass: `AlicePw1${next()}` })).json.result.value, true);
      assert.equal((await check({ user: 'alice', pass: `tokpin${next()}` })).json.result.value, false);
      assert.equal((await lastAudit()).action_detail, 'wrong user password -1');
      counter--; // that OTP was not consumed
    } finally {
      await dropPolicy('pin1');
    }
  });

  test('otppin 2: the OTP alone; otppin 3: any PIN', async () => {
    await policy('pin2', 'authentication', 'otppin=2');
    assert.equal((await check({ user: 'alice', pass: next() })).json.result.value, true);
    assert.equal((await check({ user: 'alice', pass: `tokpin${next()}` })).json.result.value, false);
    counter--;
    await dropPolicy('pin2');
    await policy('pin3', 'authentication', 'otppin=ignore_pin');
    assert.equal((await check({ user: 'alice', pass: `whatever${next()}` })).json.result.value, true);
    await dropPolicy('pin3');
  });

  test('passthru checks the directory password; passOnNoToken lets anyone without a token in', async () => {
    assert.equal((await check({ user: 'bob', pass: 'BobPw1' })).json.result.value, false);
    assert.equal((await lastAudit()).action_detail, 'User has no tokens assigned');
    await policy('pt', 'authentication', 'passthru', { user: 'bob' });
    assert.equal((await check({ user: 'bob', pass: 'BobPw1' })).json.result.value, true);
    assert.equal((await lastAudit()).action_detail, 'Authenticated against Resolver');
    assert.equal((await check({ user: 'bob', pass: 'wrong' })).json.result.value, false);
    assert.equal((await check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, false, 'passthru is for bob only');
    await dropPolicy('pt');
    await policy('pont', 'authentication', 'passOnNoToken');
    assert.equal((await check({ user: 'carol', pass: 'anything' })).json.result.value, true);
    assert.equal((await check({ user: 'alice', pass: 'anything' })).json.result.value, false, 'users with tokens still need them');
    await dropPolicy('pont');
  });

  test('authorize by client: only matching clients may authenticate', async () => {
    await policy('az', 'authorization', 'authorize', { client: '10.0.0.0/8' });
    try {
      assert.equal((await check({ user: 'alice', pass: `tokpin${hotp(seed, counter)}` })).json.result.value, false, 'from 127.0.0.1');
      await t.admin('/system/setConfig', { key: 'mayOverwriteClient', value: '127.0.0.1' });
      assert.equal((await check({ user: 'alice', pass: `tokpin${next()}`, client: '10.1.2.3' })).json.result.value, true, 'client 10.1.2.3 via mayOverwriteClient');
    } finally {
      await dropPolicy('az');
      await t.admin('/system/delConfig', { key: 'mayOverwriteClient' });
    }
  });

  test('HMAC challenge-response: PIN alone triggers, the OTP with the transaction id answers, bound to the user', async () => {
    await policy('cr', 'authentication', 'challenge_response=hmac');
    try {
      const trigger = await check({ user: 'alice', pass: 'tokpin' });
      assert.equal(trigger.json.result.value, false);
      const d = trigger.json.detail;
      assert.match(d.transactionid, /^\d{17}$/);
      assert.equal(d.message, 'Please enter your otp value: ');
      assert.equal(d.linotp_tokenserial, 'ALICE1');
      assert.equal(d.linotp_tokentype, 'hmac');
      assert.equal(d.state, undefined, 'HMAC challenges carry no state');
      const simple = await t.post('/validate/simplecheck', { user: 'alice', pass: 'tokpin' });
      assert.match(simple.body, /^:-\( \d{17} Please enter your otp value: $/);
      const otp = next();
      const bob = await check({ user: 'bob', pass: otp, transactionid: d.transactionid });
      assert.equal(bob.json.result.value, false, "another user's transaction id");
      assert.equal((await check({ user: 'alice', pass: '000000', transactionid: d.transactionid })).json.result.value, false);
      assert.equal((await check({ user: 'alice', pass: otp, transactionid: d.transactionid })).json.result.value, true);
      assert.equal((await check({ user: 'alice', pass: otp, transactionid: d.transactionid })).json.result.value, false, 'replay');
    } finally {
      await dropPolicy('cr');
    }
  });

  test('detail_on_fail shows the reason only when the policy allows', async () => {
    const plain = await check({ user: 'alice', pass: 'tokpin000000' });
    assert.equal(plain.json.detail, undefined);
    await policy('dof', 'authorization', 'detail_on_fail');
    try {
      const r = await check({ user: 'alice', pass: 'tokpin000000' });
      assert.equal(r.json.result.value, false);
      assert.equal(r.json.detail.error, 'wrong otp value');
    } finally {
      await dropPolicy('dof');
    }
  });

  test('policy user patterns: "." is a regex dot, exclusion wins', async () => {
    await policy('ptdot', 'authentication', 'passthru', { user: 'dave.x, !carol' });
    try {
      assert.equal((await check({ user: 'dave.x', pass: 'DavePw1' })).json.result.value, true);
      assert.equal((await check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, false);
    } finally {
      await dropPolicy('ptdot');
    }
  });
});
