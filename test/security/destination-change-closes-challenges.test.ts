// Invariant: changing the phone number or e-mail address of a token (`/admin/set`, re-init with
// the same serial) closes its open challenges in the same operation. A code that went to the old
// destination is refused afterwards, even inside the blocking window, and the next trigger sends
// a new code to the new destination. A trigger racing with the change never leaves a challenge
// open whose code went to the old destination.
// Real slapd, SMTP sink and HTTP SMS gateway on loopback; FakeClock.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { haveBinary } from '../helpers/require.ts';
import { codeIn, mailBody, settle, startOobEnv, type OobApp, type OobEnv, initToken } from '../oob/harness.ts';

const OLD_PHONE = '+12015550123';
const NEW_PHONE = '+4915123456789';

const skip = haveBinary('/usr/sbin/slapd', 'slapd');
let env: OobEnv;
before(async () => {
  if (!skip) env = await startOobEnv();
});
after(async () => {
  await env?.close();
});

const withApp = (fn: (app: OobApp) => Promise<void>, opts?: Parameters<OobEnv['app']>[0]) => env.withApp(fn, opts);

const init = initToken;

const isNotice = (text: string) => text.includes('was changed by an administrator');

const openChallenges = (app: OobApp, serial: string) =>
  app.services.db.kysely.selectFrom('challenges').select(['transaction_id']).where('serial', '=', serial).where('status', '=', 'open').execute();

describe('a destination change closes open challenges', { skip }, () => {
  test('sms: /admin/set phone; the old code is refused inside the blocking window; the next code goes to the new phone', () => withApp(async (app) => {
    const serial = await init(app, { type: 'sms', phone: OLD_PHONE, user: 'alice', pin: '1234' });
    const trig = await app.check({ user: 'alice', pass: '1234' });
    assert.equal(trig.json.detail.message, 'sms submitted');
    const oldCode = await app.smsCode(1);
    assert.equal(app.sms()[0]!.body.phone, OLD_PHONE);
    const set = await app.t.admin('/admin/set', { serial, phone: NEW_PHONE });
    assert.equal(set.json.result.value['set phone'], 1);
    assert.deepEqual(await openChallenges(app, serial), [], 'closed with the change');
    app.clock.advance(5_000); // well inside SMSBlockingTimeout (30 s)
    assert.equal((await app.check({ user: 'alice', pass: oldCode, transactionid: trig.json.detail.transactionid })).json.result.value, false, 'two-step answer');
    assert.equal((await app.check({ user: 'alice', pass: `1234${oldCode}` })).json.result.value, false, 'one-step answer');
    const again = await app.check({ user: 'alice', pass: '1234' });
    assert.equal(again.json.detail.message, 'sms submitted', 'a new code, not "already submitted"');
    assert.notEqual(again.json.detail.transactionid, trig.json.detail.transactionid);
    await app.smsCode(3); // first code, rebinding notice to the old phone, new code
    await settle(app);
    const codes = app.sms().filter((r) => !isNotice(String(r.body.sms)));
    assert.equal(codes.length, 2);
    assert.equal(codes[1]!.body.phone, NEW_PHONE);
    const newCode = codeIn(String(codes[1]!.body.sms));
    assert.equal((await app.check({ user: 'alice', pass: newCode, transactionid: again.json.detail.transactionid })).json.result.value, true);
  }));

  test('sms: re-init of the same serial with another phone closes the challenge too', () => withApp(async (app) => {
    const serial = await init(app, { type: 'sms', phone: OLD_PHONE, user: 'alice', pin: '1234' });
    const trig = await app.check({ user: 'alice', pass: '1234' });
    const oldCode = await app.smsCode(1);
    await init(app, { type: 'sms', serial, phone: NEW_PHONE, user: 'alice', pin: '1234' });
    assert.deepEqual(await openChallenges(app, serial), []);
    assert.equal((await app.check({ user: 'alice', pass: oldCode, transactionid: trig.json.detail.transactionid })).json.result.value, false);
  }));

  test('an unchanged phone (set pin, set the same phone) leaves the challenge open', () => withApp(async (app) => {
    const serial = await init(app, { type: 'sms', phone: OLD_PHONE, user: 'alice', pin: '1234' });
    const trig = await app.check({ user: 'alice', pass: '1234' });
    const code = await app.smsCode(1);
    await app.t.admin('/admin/set', { serial, phone: OLD_PHONE, description: 'same phone' });
    assert.equal((await openChallenges(app, serial)).length, 1);
    assert.equal((await app.check({ user: 'alice', pass: code, transactionid: trig.json.detail.transactionid })).json.result.value, true);
  }));

  test('email: /admin/set email_address refuses the code sent to the old address', () => withApp(async (app) => {
    const serial = await init(app, { type: 'email', email_address: 'bob@example.org', user: 'bob', pin: '1234' });
    const trig = await app.check({ user: 'bob', pass: '1234' });
    const oldCode = await app.mailCode(1);
    await app.t.admin('/admin/set', { serial, email_address: 'bob.new@example.org' });
    app.clock.advance(5_000);
    assert.equal((await app.check({ user: 'bob', pass: oldCode, transactionid: trig.json.detail.transactionid })).json.result.value, false);
    const again = await app.check({ user: 'bob', pass: '1234' });
    assert.equal(again.json.detail.message, 'e-mail sent successfully');
    await app.mailCode(3);
    await settle(app);
    const codes = app.mails().filter((m) => !isNotice(mailBody(m).replace(/=\r\n/g, '')));
    assert.equal(codes.length, 2);
    assert.match(codes[1]!.raw, /^To: bob\.new@example\.org\r$/m);
    const newCode = codeIn(mailBody(codes[1]!));
    assert.equal((await app.check({ user: 'bob', pass: newCode, transactionid: again.json.detail.transactionid })).json.result.value, true);
  }));

  test('burst: triggers racing with the change never leave a code for the old phone usable', () => withApp(async (app) => {
    const serial = await init(app, { type: 'sms', phone: OLD_PHONE, user: 'alice', pin: '1234' });
    await app.t.admin('/admin/set', { serial, MaxFailCount: '100' });
    await app.config({ SMSBlockingTimeout: '0' });
    for (let round = 0; round < 4; round++) {
      const phone = round % 2 === 0 ? NEW_PHONE : OLD_PHONE;
      const before = app.sms().length;
      await Promise.all([
        ...Array.from({ length: 4 }, () => app.check({ user: 'alice', pass: '1234' })),
        app.t.admin('/admin/set', { serial, phone }),
        ...Array.from({ length: 4 }, () => app.check({ user: 'alice', pass: '1234' })),
      ]);
      await settle(app);
      // (the rebinding notice to the old phone carries no code)
      const stale = app.sms().slice(before).filter((r) => r.body.phone !== phone && !isNotice(String(r.body.sms)));
      for (const r of stale) {
        const code = codeIn(String(r.body.sms));
        assert.equal((await app.check({ user: 'alice', pass: `1234${code}` })).json.result.value, false, `round ${round}: code sent to ${String(r.body.phone)} refused`);
      }
      app.clock.advance(1_000);
    }
  }));
});
