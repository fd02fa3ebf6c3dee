// Policy forward_server (a switch-over from LinOTP, spec 2.1 steps 2 and 5.6): otpd answers for
// the users it has tokens for and forwards /validate/check and RADIUS requests of the others to
// the old server over LinOTP's HTTP API, with the old server's answer (accept, refuse, or its
// challenge, answered through otpd with the old transaction id), an audit row saying so, and a
// bounded wait: an old server that is down or hangs is an outage (ERR2004, RADIUS silent),
// never an accept. The "old server" here is a second otpd speaking LinOTP's API on loopback.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hotp } from '../../src/otp/hotp.ts';
import { haveBinary } from '../helpers/require.ts';
import { startOtpd, type RunningOtpd } from '../helpers/server.ts';
import { crypt, KEY, SEED, startValidationFixture, type ValidationFixture } from '../security/validation-fixture.ts';

const SECRET = 'forward-test-secret';
const KEY_B = '3132333435363738393031323334353637383931';
const SEED_B = Buffer.from(KEY_B, 'hex');

describe('forward_server: run side by side with the old server', { skip: haveBinary('radclient', 'freeradius-utils') }, () => {
  let old: ValidationFixture;
  let oldUrl: string;
  let otpd: RunningOtpd;
  let hang: Server;
  let hangUrl: string;
  const check = async (form: Record<string, string>) => {
    const res = await otpd.running.app.inject({ method: 'POST', url: '/validate/check', payload: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    return JSON.parse(res.body);
  };
  const oldChecks = async () => (await old.services.db.kysely.selectFrom('audit').select('id').where('action', '=', 'validate/check').execute()).length;
  const lastAudit = async () => otpd.running.services.db.kysely.selectFrom('audit').selectAll().where('action', 'in', ['validate/check', 'radius/auth']).orderBy('id', 'desc').executeTakeFirstOrThrow();
  const policy = async (action: string) => {
    const r = await otpd.admin('/system/setPolicy', { name: 'fwd', scope: 'authentication', action, realm: '*', user: '*', client: '*' });
    assert.equal(r.result.status, true, JSON.stringify(r));
  };

  before(async () => {
    // the old server knows alice (HOTP, PIN alicepin) and carol (HOTP with challenge_response)
    old = await startValidationFixture();
    assert.equal((await old.admin('/admin/init', { type: 'hmac', serial: 'OLD-ALICE', otpkey: KEY, pin: 'alicepin', user: 'alice', realm: 'staff' })).json.result.value, true);
    assert.equal((await old.admin('/admin/init', { type: 'hmac', serial: 'OLD-CAROL', otpkey: KEY_B, pin: 'carolpin', user: 'carol', realm: 'staff' })).json.result.value, true);
    await old.policy('cr', 'authentication', 'challenge_response=hmac');
    await old.app.listen({ host: '127.0.0.1', port: 0 });
    oldUrl = `http://127.0.0.1:${(old.app.server.address() as AddressInfo).port}/validate/check`;
    // a server that accepts the connection and never answers
    hang = createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
    // the new server: same directory users, bob already has a token here
    const users = [
      `alice:${crypt('AlicePw1')}:1001:1001:Alice Anders,,,,alice@example.org:/home/alice:/bin/sh`,
      `bob:${crypt('BobPw1')}:1002:1002:Bob Berg,,,,bob@example.org:/home/bob:/bin/sh`,
      `carol:${crypt('CarolPw1')}:1003:1003:Carol Cole,,,,carol@example.org:/home/carol:/bin/sh`,
    ].join('\n') + '\n';
    otpd = await startOtpd({ radiusSecret: SECRET, radiusRealm: 'staff', files: { users } });
    assert.equal((await otpd.admin('/system/setResolver', { name: 'files', type: 'passwdresolver', fileName: join(otpd.dir, 'users') })).result.value, true);
    assert.equal((await otpd.admin('/system/setRealm', { realm: 'staff', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.files' })).result.value, true);
    await otpd.admin('/system/setDefaultRealm', { realm: 'staff' });
    assert.equal((await otpd.admin('/admin/init', { type: 'hmac', serial: 'NEW-BOB', otpkey: KEY, pin: 'bobpin', user: 'bob', realm: 'staff' })).result.value, true);
  });
  after(async () => {
    await otpd?.stop();
    await old?.close();
    hang?.closeAllConnections();
    await new Promise((r) => hang?.close(r));
  });

  test('refused values: radius:// targets, credentials in the URL, a bad timeout', async () => {
    for (const bad of ['forward_server=radius://s@127.0.0.1:1812', 'forward_server=https://u:p@127.0.0.1', 'forward_server=http://127.0.0.1?timeout=0']) {
      const r = await otpd.admin('/system/setPolicy', { name: 'bad', scope: 'authentication', action: bad, realm: '*', user: '*', client: '*' });
      assert.equal(r.result.status, false, bad);
      assert.equal(r.result.error.code, 2012, bad);
    }
  });

  test('forward_on_no_token: users without a token here go to the old server, users with one are answered here', async () => {
    await policy(`forward_server=${oldUrl}?timeout=3, forward_on_no_token`);
    const before = await oldChecks();
    // alice has no token here: the old server decides
    assert.equal((await check({ user: 'alice', pass: `alicepin${hotp(SEED, 0)}` })).result.value, true);
    const ok = await lastAudit();
    assert.equal(ok.reason, 'forwarded');
    assert.match(ok.action_detail, /forwarded to 127\.0\.0\.1:\d+: accepted/);
    assert.equal(ok.user, 'alice');
    // the old server's replay protection holds through the forward
    assert.equal((await check({ user: 'alice', pass: `alicepin${hotp(SEED, 0)}` })).result.value, false);
    assert.equal((await lastAudit()).reason, 'forwardedRefused');
    assert.equal(await oldChecks(), before + 2);
    // bob is answered here and never reaches the old server
    assert.equal((await check({ user: 'bob', pass: `bobpin${hotp(SEED, 0)}` })).result.value, true);
    assert.equal((await lastAudit()).reason, 'authenticated');
    assert.equal((await check({ user: 'bob', pass: `alicepin${hotp(SEED, 1)}` })).result.value, false);
    assert.equal(await oldChecks(), before + 2, 'bob was never forwarded');
    // an unknown user is refused here (the old server shares the directory)
    assert.equal((await check({ user: 'nobody', pass: 'x123456' })).result.value, false);
    assert.equal(await oldChecks(), before + 2);
  });

  test('the old server\'s challenge is passed on and its answer forwarded with the old transaction id', async () => {
    await policy(`forward_server=${oldUrl}, forward_on_no_token`);
    const trig = await check({ user: 'carol', pass: 'carolpin' });
    assert.equal(trig.result.value, false);
    const tid = trig.detail.transactionid;
    assert.match(tid, /^\d+$/);
    assert.equal((await lastAudit()).reason, 'forwardedChallenge');
    assert.equal((await check({ user: 'carol', pass: hotp(SEED_B, 0), transactionid: tid })).result.value, true);
    assert.equal((await lastAudit()).reason, 'forwarded');
  });

  test('over RADIUS: a forwarded user is accepted or rejected by the old server', async () => {
    await policy(`forward_server=${oldUrl}, forward_on_no_token`);
    assert.equal((await otpd.radius('alice', `alicepin${hotp(SEED, 1)}`)).reply, 'Access-Accept');
    assert.equal((await otpd.radius('alice', `alicepin${hotp(SEED, 1)}`)).reply, 'Access-Reject');
    const rows = await otpd.running.services.db.kysely.selectFrom('audit').selectAll().where('user', '=', 'alice').orderBy('id', 'desc').limit(2).execute();
    assert.deepEqual(rows.map((r) => r.reason).sort(), ['forwarded', 'forwardedRefused']);
  });

  test('without forward_on_no_token every user is forwarded, bob too', async () => {
    await policy(`forward_server=${oldUrl}`);
    // bob has no token on the old server: refused there, although his token here would match
    assert.equal((await check({ user: 'bob', pass: `bobpin${hotp(SEED, 2)}` })).result.value, false);
    assert.equal((await lastAudit()).reason, 'forwardedRefused');
  });

  test('an old server that hangs or is gone is an outage within the timeout: ERR2004, never an accept; the next server in the list is tried', async () => {
    await policy(`forward_server=${hangUrl}?timeout=1, forward_on_no_token`);
    const started = Date.now();
    const a = await check({ user: 'alice', pass: `alicepin${hotp(SEED, 2)}` });
    assert.ok(Date.now() - started < 4000, `answered after ${Date.now() - started} ms`);
    assert.equal(a.result.status, false);
    assert.equal(a.result.error.code, 2004);
    assert.equal((await lastAudit()).reason, 'forwardUnavailable');
    // RADIUS stays silent on an outage (the NAS tries its next server)
    const r = await otpd.radius('alice', `alicepin${hotp(SEED, 2)}`, { timeoutSeconds: 3, retries: 1 });
    assert.equal(r.reply, undefined, r.output);
    // a second target that answers is used
    await policy(`forward_server=${hangUrl}?timeout=1 ${oldUrl}, forward_on_no_token`);
    assert.equal((await check({ user: 'alice', pass: `alicepin${hotp(SEED, 2)}` })).result.value, true);
  });
});
