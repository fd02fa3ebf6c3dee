// End to end through the real server: radclient → otpd's RADIUS listener → the same
// validation service as HTTP (flat-file user store, HOTP token, policies, fail counter,
// audit). Covers Accept, Reject, the two-step HMAC challenge with State, reply attributes,
// and that HTTP and RADIUS share one fail counter.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { hotp } from '../../src/otp/hotp.ts';
import type { Running } from '../../src/server.ts';
import { haveBinary } from '../helpers/require.ts';
import { startOtpd, type RunningOtpd } from '../helpers/server.ts';
import { radclient } from './helpers.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');
const SECRET = 'e2e-shared-secret';

describe('RADIUS end to end with the validation service', { skip: haveBinary('radclient', 'freeradius-utils') }, () => {
  let otpd: RunningOtpd;
  let running: Running;
  let key: string;
  let counter = 0;
  let smtp: SmtpSink;
  const admin = (path: string, form: Record<string, string>) => otpd.admin(path, form);
  const rad = (input: string) => radclient({ target: `127.0.0.1:${otpd.radiusPort}`, secret: SECRET, input: `${input},Message-Authenticator=0x00` });

  before(async () => {
    const hash = execFileSync('openssl', ['passwd', '-6', 'ErinPw1'], { encoding: 'utf8' }).trim();
    const frankHash = execFileSync('openssl', ['passwd', '-6', 'FrankPw1'], { encoding: 'utf8' }).trim();
    const users = [
      `erin:${hash}:2001:2001:Erin Eck,,+4930999,,erin@example.org:/home/erin:/bin/sh`,
      `frank:${frankHash}:2002:2002:Frank Falk,,,,frank@example.org:/home/frank:/bin/sh`,
    ].join('\n') + '\n';
    smtp = await new SmtpSink({}).start();
    otpd = await startOtpd({ radiusSecret: SECRET, radiusRealm: 'corp', files: { users } });
    ({ running, apiKey: key } = otpd);
    assert.equal((await admin('/system/setResolver', { name: 'files', type: 'passwdresolver', fileName: join(otpd.dir, 'users') })).result.value, true);
    assert.equal((await admin('/system/setRealm', { realm: 'corp', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.files' })).result.value, true);
    assert.equal((await admin('/admin/init', { type: 'hmac', serial: 'ERIN1', otpkey: KEY, pin: 'pin', user: 'erin', realm: 'corp' })).result.value, true);
    await admin('/system/setConfig', { key: 'RadiusReplyAttributes', value: JSON.stringify({ Class: 'staff-${username}', 'Filter-Id': 'vpn-${department}' }) });
  });
  after(async () => {
    await otpd?.stop();
    await smtp?.stop();
  });

  test('PIN+OTP in one step: Accept with reply attributes; replay: Reject', async () => {
    const otp = hotp(seed, counter++);
    const ok = await rad(`User-Name=erin,User-Password=pin${otp}`);
    assert.equal(ok.reply, 'Access-Accept', ok.output);
    assert.equal(ok.attributes.Class, '0x73746166662d6572696e', 'Class = staff-erin');
    assert.equal(ok.attributes['Filter-Id'], undefined, 'no department attribute: left out');
    const replay = await rad(`User-Name=erin,User-Password=pin${otp}`);
    assert.equal(replay.reply, 'Access-Reject');
  });

  test('each Access-Request has its own request id in its audit row, like an HTTP request', async () => {
    const before = Number((await running.services.db.kysely.selectFrom('audit').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst())?.m ?? 0);
    for (let i = 0; i < 2; i++) assert.equal((await rad(`User-Name=erin,User-Password=pin${hotp(seed, counter++)}`)).reply, 'Access-Accept');
    await running.services.audit.settled();
    const rows = await running.services.db.kysely.selectFrom('audit').select(['action', 'request_id']).where('id', '>', before).where('action', 'like', 'radius%').execute();
    assert.equal(rows.length, 2, JSON.stringify(rows));
    for (const r of rows) assert.match(r.request_id, /^radius-[0-9a-f-]{36}$/);
    assert.notEqual(rows[0]!.request_id, rows[1]!.request_id);
  });

  test('challenge: PIN alone → Access-Challenge with State; the OTP with that State → Accept', async () => {
    assert.equal((await admin('/system/setPolicy', { name: 'cr', scope: 'authentication', action: 'challenge_response=hmac', realm: '*', user: '*', client: '*' })).result.status, true);
    const ch = await rad('User-Name=erin,User-Password=pin');
    assert.equal(ch.reply, 'Access-Challenge', ch.output);
    assert.equal(ch.attributes['Reply-Message'], 'Please enter your otp value: ');
    const state = ch.attributes.State;
    assert.match(state, /^0x[0-9a-f]{32,}$/, 'State has at least 128 bits');
    const otp = hotp(seed, counter++);
    const ok = await rad(`User-Name=erin,User-Password=${otp},State=${state}`);
    assert.equal(ok.reply, 'Access-Accept', ok.output);
    const again = await rad(`User-Name=erin,User-Password=${hotp(seed, counter)},State=${state}`);
    assert.equal(again.reply, 'Access-Reject', 'a State is single use');
    await admin('/system/delPolicy', { name: 'cr' });
  });

  test('HTTP and RADIUS failures share one fail counter', async () => {
    const before = (await running.services.tokens.repository.bySerial('ERIN1'))!.failCount;
    await rad('User-Name=erin,User-Password=pin000000');
    await fetch(`${running.url}/validate/check`, { method: 'POST', body: new URLSearchParams({ user: 'erin@corp', pass: 'pin000000' }) });
    assert.equal((await running.services.tokens.repository.bySerial('ERIN1'))!.failCount, before + 2);
    const audit = await running.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'radius/access-request').execute();
    assert.ok(audit.length >= 3);
    assert.ok(!JSON.stringify(audit).includes('pin000000'));
  });

  test('a wrong OTP over RADIUS is one commit: its fail counter and its audit row, then the floor holds the answer', async () => {
    const commits = () => (running.services.db.stats() as { sqlite: { commits: number } }).sqlite.commits;
    // the dispatcher's housekeeping (its first pass after start prunes the send counters and the
    // delivery log: two commits of its own) done first, so it cannot fall into a window counted here
    await running.services.delivery.tick();
    for (let i = 0; i < 3; i++) await rad('User-Name=erin,User-Password=pin000000');
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = commits();
      assert.equal((await rad('User-Name=erin,User-Password=pin000000')).reply, 'Access-Reject');
      counts.push(commits() - before);
    }
    assert.deepEqual(counts, [1, 1, 1]);
    await admin('/admin/reset', { serial: 'ERIN1' });
  });

  test('/metrics counts RADIUS answers and silent drops (admin key required)', async () => {
    await radclient({ target: `127.0.0.1:${otpd.radiusPort}`, secret: 'wrong-secret', input: 'User-Name=erin,User-Password=x,Message-Authenticator=0x00', timeoutSeconds: 1, retries: 1 });
    assert.equal((await fetch(`${running.url}/metrics`)).status, 401);
    const text = await (await fetch(`${running.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
    const accepted = Number(/otpd_radius_requests_total\{result="accepted"\} (\d+)/.exec(text)?.[1]);
    assert.ok(accepted >= 2, text);
    assert.match(text, /otpd_radius_dropped_total\{reason="[a-z_]+"\} [1-9]/);
    assert.match(text, /otpd_delivery_messages_total\{status="accepted"\} \d+/);
  });

  test('autoenrollment over RADIUS: password → Access-Challenge, empty answer → resend rules, code + State → Accept', async () => {
    const codeOf = (i: number) => /(\d{6,})\s*$/.exec(smtp.mails[i].raw)![1];
    const waitMails = async (n: number) => {
      await waitFor(() => smtp.mails.length >= n, { what: `${n} mail(s)` });
      assert.equal(smtp.mails.length, n);
    };
    assert.equal((await admin('/system/setProvider', { type: 'email', name: 'mail', class: 'SMTPEmailProvider', timeout: '5', default: 'true', config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: smtp.port, EMAIL_FROM: 'otpd@example.org' }) })).result.value, true);
    assert.equal((await admin('/system/setPolicy', { name: 'ae', scope: 'enrollment', action: 'autoenrollment=email', realm: '*', user: '*', client: '*' })).result.status, true);
    const first = await rad('User-Name=frank,User-Password=FrankPw1');
    assert.equal(first.reply, 'Access-Challenge', first.output);
    assert.equal(first.attributes['Reply-Message'], 'e-mail sent successfully');
    await waitMails(1);
    assert.deepEqual(smtp.mails[0].to, ['frank@example.org']);
    // empty answer inside the blocking window: same code, nothing sent
    const again = await rad(`User-Name=frank,User-Password="",State=${first.attributes.State}`);
    assert.equal(again.reply, 'Access-Challenge', again.output);
    assert.equal(again.attributes['Reply-Message'], 'e-mail with otp already submitted');
    await running.services.delivery.idle(); // a send would have started before the answer
    assert.equal(smtp.mails.length, 1);
    // outside the blocking window: a new code is sent
    await admin('/system/setConfig', { key: 'EmailBlockingTimeout', value: '0' });
    const resent = await rad(`User-Name=frank,User-Password="",State=${again.attributes.State}`);
    assert.equal(resent.reply, 'Access-Challenge', resent.output);
    await waitMails(2);
    const ok = await rad(`User-Name=frank,User-Password=${codeOf(1)},State=${resent.attributes.State}`);
    assert.equal(ok.reply, 'Access-Accept', ok.output);
    const tokens = await running.services.tokens.repository.find({});
    assert.ok(tokens.some((t) => t.type === 'email' && t.description === 'auto enrolled for frank@corp'));
  });
});
