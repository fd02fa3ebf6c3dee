// Invariant: the help-desk calls (losttoken, getSerialByOtp, check_serial, copyTokenPin,
// copyTokenUser, tokenrealm, setValidity, setPin) act only on tokens the administrator's admin
// policies reach and only with the right that names them; a lost-token replacement is made once
// (also under a parallel burst), its password is shown once and never audited, the original stops
// working. A token outside its validity period or past its count limits neither authenticates nor
// gets a challenge, and a parallel burst cannot pass a count limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hotp } from '../../src/otp/hotp.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { KEY, KEY2, SEED, SEED2, startValidationFixture, type ValidationFixture } from '../security/validation-fixture.ts';

const value = (r: { json: any }) => r.json.result.value;
const code = (r: { json: any }) => r.json.result.error?.code;

describe('token validity period and count limits', () => {
  let t: ValidationFixture;
  const clock = new FakeClock();
  let c = 0;
  before(async () => {
    t = await startValidationFixture({ clock });
    assert.equal(value(await t.admin('/admin/init', { type: 'hmac', serial: 'V1', otpkey: KEY, pin: 'vpin', user: 'alice', realm: 'staff' })), true);
    await t.policy('cr', 'authentication', 'challenge_response=hmac');
  });
  after(async () => t?.close());

  test('validityPeriodEnd in the past: no login, no challenge; in the future: both work', async () => {
    const past = new Date(clock.now() - 60_000).toISOString();
    const set = await t.admin('/admin/setValidity', { serial: 'V1', validityPeriodEnd: past });
    assert.deepEqual(value(set), { 'set validityPeriodEnd': 1 }, set.body);
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c)}` })), false);
    assert.equal((await t.lastAudit() as any).reason, 'tokenNotValid');
    const trigger = await t.check({ user: 'alice', pass: 'vpin' });
    assert.equal(value(trigger), false);
    assert.equal(trigger.json.detail, undefined, 'no challenge for an expired token');
    // LinOTP's notation, one minute ahead
    const d = new Date(clock.now() + 60_000);
    const linotp = `${String(d.getUTCDate()).padStart(2, '0')}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCFullYear()).slice(2)} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
    assert.deepEqual(value(await t.admin('/admin/set', { serial: 'V1', validityPeriodEnd: linotp })), { 'set validityPeriodEnd': 1 });
    assert.ok((await t.check({ user: 'alice', pass: 'vpin' })).json.detail?.transactionid, 'a challenge again');
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c++)}` })), true);
    clock.advance(120_000);
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c)}` })), false, 'expired while in use');
    assert.equal(value(await t.admin('/admin/setValidity', { serial: 'V1', validityPeriodEnd: '' }))['set validityPeriodEnd'], 1);
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c++)}` })), true, 'cleared');
  });

  test('validityPeriodStart in the future refuses until it comes; bad values are refused', async () => {
    await t.admin('/admin/setValidity', { serial: 'V1', validityPeriodStart: String(Math.floor(clock.now() / 1000) + 3600) });
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c)}` })), false);
    clock.advance(3600_000);
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c++)}` })), true);
    for (const bad of [{ validityPeriodStart: 'next week' }, { countAuthMax: '-1' }, { countAuthSuccessMax: 'x' }] as Record<string, string>[]) {
      assert.equal(code(await t.admin('/admin/setValidity', { serial: 'V1', ...bad })), 2100, JSON.stringify(bad));
    }
    assert.equal(code(await t.admin('/admin/setValidity', { serial: 'V1' })), 77);
  });

  test('countAuthMax counts attempts, countAuthSuccessMax successes; countAuth resets them', async () => {
    await t.admin('/admin/set', { serial: 'V1', countAuth: '0', countAuthMax: '2' });
    assert.equal(value(await t.check({ user: 'alice', pass: 'vpin000000' })), false);
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c++)}` })), true);
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c)}` })), false, 'third attempt');
    assert.equal((await t.lastAudit() as any).reason, 'tokenUsageExceeded');
    assert.deepEqual(value(await t.admin('/admin/set', { serial: 'V1', countAuth: '0', countAuthMax: '', countAuthSuccess: '0', countAuthSuccessMax: '1' })),
      { 'set countAuth': 1, 'set countAuthMax': 1, 'set countAuthSuccess': 1, 'set countAuthSuccessMax': 1 });
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c++)}` })), true);
    assert.equal(value(await t.check({ user: 'alice', pass: `vpin${hotp(SEED, c)}` })), false, 'one success only');
    await t.admin('/admin/set', { serial: 'V1', countAuthSuccessMax: '' });
  });

  test('a parallel burst with a static password passes countAuthSuccessMax=1 once', async () => {
    assert.equal(value(await t.admin('/admin/init', { type: 'pw', serial: 'PW9', otpkey: 'Static-Pw-9', pin: 'p9', user: 'bob', realm: 'staff' })), true);
    await t.admin('/admin/setValidity', { serial: 'PW9', countAuthSuccessMax: '1' });
    const results = await Promise.all(Array.from({ length: 12 }, () => t.check({ user: 'bob', pass: 'p9Static-Pw-9' })));
    assert.equal(results.filter((r) => value(r) === true).length, 1);
    const row = await t.services.tokens.repository.bySerial('PW9');
    assert.equal(row!.countAuthSuccess, 1);
  });

  test('RADIUS-shared pipeline: check_s by serial honours the limits too', async () => {
    assert.equal(value(await t.check({ serial: 'PW9', pass: 'p9Static-Pw-9' }, '/validate/check_s')), false);
  });
});

describe('lost token', () => {
  let t: ValidationFixture;
  const clock = new FakeClock();
  let hdKey = '';
  before(async () => {
    t = await startValidationFixture({ clock });
    const init = (form: Record<string, string>) => t.admin('/admin/init', form).then((r) => assert.equal(value(r), true, r.body));
    await init({ type: 'hmac', serial: 'ALICE1', otpkey: KEY, pin: 'alicepin', user: 'alice', realm: 'staff' });
    await init({ type: 'hmac', serial: 'CAROL1', otpkey: KEY2, pin: 'carolpin', user: 'carol', realm: 'staff' });
    await init({ type: 'spass', serial: 'BOBSP', pin: 'bob-spass-pin', user: 'bob', realm: 'staff' });
    await init({ type: 'hmac', serial: 'DAVE1', otpkey: KEY, pin: 'davepin', user: 'dave', realm: 'lab' });
    await init({ type: 'hmac', serial: 'FREE1', otpkey: KEY2, tokenrealm: 'staff' });
    await t.services.admins.add('hd', 'helpdesk-password-1');
    hdKey = await t.services.admins.createApiKey('hd', 'tests');
    await t.policy('root', 'admin', '*', { user: 'admin' });
    await t.policy('helpdesk', 'admin', 'show, losttoken, getserial, copytokenpin, copytokenuser, set', { user: 'hd', realm: 'staff' });
  });
  after(async () => t?.close());
  const asHd = (path: string, form: Record<string, string>) => t.post(path, form, { authorization: `Bearer ${hdKey}` });

  test('a password replacement: shown once, PIN copied, original disabled, never audited', async () => {
    await t.policy('lostpw', 'enrollment', 'lostTokenPWLen=14, lostTokenPWContents=Cn, lostTokenValid=2h');
    const r = await asHd('/admin/losttoken', { serial: 'ALICE1' });
    const v = value(r);
    assert.equal(v.serial, 'lostALICE1', r.body);
    assert.equal(v.type, 'pw');
    assert.match(v.password, /^[A-Z2-9]{14}$/);
    assert.match(v.password, /[A-Z]/);
    assert.match(v.password, /[2-9]/);
    assert.equal(v.end_date, new Date(clock.now() + 2 * 3600_000).toISOString());
    assert.equal(value(await t.check({ user: 'alice', pass: `alicepin${v.password}` })), true, 'PIN + password');
    assert.equal(value(await t.check({ user: 'alice', pass: `alicepin${hotp(SEED, 0)}` })), false, 'the lost token is disabled');
    const rows = await t.services.db.kysely.selectFrom('audit').selectAll().execute();
    assert.ok(!JSON.stringify(rows).includes(v.password), 'the password is in no audit row');
    const shown = await t.admin('/admin/show', { serial: 'lostALICE1' });
    assert.ok(!shown.body.includes(v.password));
    clock.advance(2 * 3600_000);
    assert.equal(value(await t.check({ user: 'alice', pass: `alicepin${v.password}` })), false, 'expired after lostTokenValid');
    assert.equal(code(await asHd('/admin/losttoken', { serial: 'ALICE1' })), 2202, 'only once');
    await t.admin('/system/delPolicy', { name: 'lostpw' });
  });

  test('a parallel burst makes one replacement and shows one password', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => asHd('/admin/losttoken', { serial: 'CAROL1' })));
    const made = results.filter((r) => r.json.result.status === true);
    assert.equal(made.length, 1, results.map((r) => r.body).join('\n'));
    assert.ok(results.filter((r) => r.json.result.status !== true).every((r) => code(r) === 2202));
    assert.equal(await t.services.tokens.repository.count({ serial: 'lostCAROL1' }), 1);
    assert.equal(value(await t.check({ user: 'carol', pass: `carolpin${value(made[0]).password}` })), true);
  });

  test('e-mail and SMS replacements go to the user-store address; none without one', async () => {
    assert.equal(value(await t.admin('/admin/remove', { serial: 'lostCAROL1' })), 1);
    const mail = await t.admin('/admin/losttoken', { serial: 'CAROL1', type: 'email' });
    assert.equal(value(mail).type, 'email', mail.body);
    assert.equal(value(mail).email, 'c***@example.org');
    assert.equal(value(mail).password, undefined);
    const tok = await t.services.tokens.repository.bySerial('lostCAROL1');
    assert.equal(tok!.info.email_address, 'carol@example.org');
    assert.equal(t.services.tokens.checkPin(tok!, 'carolpin'), true, 'PIN copied');
    await t.admin('/admin/remove', { serial: 'lostCAROL1' });
    const sms = await t.admin('/admin/losttoken', { serial: 'CAROL1', type: 'sms' });
    assert.equal(code(sms), 2203, 'carol has no mobile number');
    assert.equal(await t.services.tokens.repository.count({ serial: 'lostCAROL1' }), 0);
  });

  test('a spass original: the replacement has no PIN', async () => {
    const r = await t.admin('/admin/losttoken', { serial: 'BOBSP' });
    assert.equal(value(await t.check({ user: 'bob', pass: value(r).password })), true, r.body);
    assert.equal(value(await t.check({ user: 'bob', pass: 'bob-spass-pin' })), false);
  });

  test('refused: another realm, no right, unassigned, unknown type', async () => {
    assert.equal(code(await asHd('/admin/losttoken', { serial: 'DAVE1' })), 2201, 'lab is not the help desk\'s realm');
    assert.equal(await t.services.tokens.repository.count({ serial: 'lostDAVE1' }), 0);
    assert.equal((await t.services.tokens.repository.bySerial('DAVE1'))!.active, true);
    await t.policy('helpdesk', 'admin', 'show', { user: 'hd', realm: 'staff' });
    assert.equal(code(await asHd('/admin/losttoken', { serial: 'FREE1' })), 410);
    await t.policy('helpdesk', 'admin', 'show, losttoken, getserial, copytokenpin, copytokenuser, set', { user: 'hd', realm: 'staff' });
    assert.equal(code(await asHd('/admin/losttoken', { serial: 'FREE1' })), 2204);
    assert.equal(code(await asHd('/admin/losttoken', { serial: 'FREE1', type: 'hmac' })), 2100);
  });

  test('getSerialByOtp finds a token by its code, only in the admin\'s realms', async () => {
    const free = await asHd('/admin/getSerialByOtp', { otp: hotp(SEED2, 3), unassigned: '1' });
    assert.equal(value(free).serial, 'FREE1', free.body);
    assert.equal(value(await asHd('/admin/getSerialByOtp', { otp: hotp(SEED2, 3), assigned: '1' })).serial, '');
    // DAVE1 (realm lab) has the same seed as ALICE1 (disabled): the help desk finds neither
    assert.equal(value(await asHd('/admin/getSerialByOtp', { otp: hotp(SEED, 1) })).serial, '');
    assert.equal(value(await t.admin('/admin/getSerialByOtp', { otp: hotp(SEED, 1), realm: 'lab' })).serial, 'DAVE1');
    assert.equal(value(await asHd('/admin/getSerialByOtp', { otp: hotp(SEED, 1), realm: 'lab' })).serial, '');
  });

  test('check_serial says whether a serial is free and proposes one', async () => {
    assert.deepEqual(value(await t.admin('/admin/check_serial', { serial: 'NEW1' })), { unique: true, new_serial: 'NEW1' });
    assert.deepEqual(value(await t.admin('/admin/check_serial', { serial: 'FREE1' })), { unique: false, new_serial: 'FREE1_01' });
  });

  test('copyTokenPin and copyTokenUser: within the admin\'s realms, never onto another user\'s token', async () => {
    assert.equal(code(await asHd('/admin/copyTokenPin', { from: 'DAVE1', to: 'FREE1' })), 2201);
    assert.equal(code(await asHd('/admin/copyTokenUser', { from: 'FREE1', to: 'DAVE1' })), 2201);
    assert.equal(code(await asHd('/admin/copyTokenUser', { from: 'BOBSP', to: 'CAROL1' })), 1105, 'CAROL1 is carol\'s');
    assert.equal(value(await asHd('/admin/copyTokenUser', { from: 'CAROL1', to: 'FREE1' })), true);
    assert.equal(value(await asHd('/admin/copyTokenPin', { from: 'CAROL1', to: 'FREE1' })), true);
    assert.equal(value(await t.check({ user: 'carol', serial: 'FREE1', pass: `carolpin${hotp(SEED2, 4)}` })), true, 'carol logs in with FREE1 and her PIN');
  });

  test('tokenrealm: only realms that exist and the admin may use', async () => {
    assert.equal(code(await asHd('/admin/tokenrealm', { serial: 'FREE1', realms: 'staff,lab' })), 410);
    assert.equal(code(await t.admin('/admin/tokenrealm', { serial: 'FREE1', realms: 'nowhere' })), 2006);
    assert.equal(value(await t.admin('/admin/tokenrealm', { serial: 'FREE1', realms: 'staff,lab' })), 1);
    assert.deepEqual((await t.services.tokens.repository.bySerial('FREE1'))!.realms, ['lab', 'staff']);
  });

  test('tokenrealm: parallel realm changes of one token all succeed and the last one stands (found by the fuzz: UNIQUE token_realms, an internal error)', async () => {
    const repo = t.services.tokens.repository;
    const { id } = (await repo.bySerial('FREE1'))!;
    const sets = Array.from({ length: 40 }, (_, i) => (i % 2 ? ['staff'] : ['Staff', 'lab']));
    const results = await Promise.allSettled(sets.map((realms) => repo.setRealms(id, realms)));
    assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)).slice(0, 2), []);
    assert.deepEqual((await repo.bySerial('FREE1'))!.realms, ['staff']);
    assert.equal(value(await t.admin('/admin/tokenrealm', { serial: 'FREE1', realms: 'staff,lab' })), 1);
    assert.deepEqual((await repo.bySerial('FREE1'))!.realms, ['lab', 'staff']);
  });

  test('setPin: otpd tokens have no user PIN, and it says where the OTP PIN is set', async () => {
    const r = await t.admin('/admin/setPin', { serial: 'FREE1', userpin: '1234' });
    assert.equal(code(r), 2205);
    assert.match(r.json.result.error.message, /\/admin\/set pin=/);
  });
});

describe('importPolicy: LinOTP\'s multipart upload, each refused policy reported', () => {
  let t: ValidationFixture;
  before(async () => {
    t = await startValidationFixture();
  });
  after(async () => t?.close());
  const upload = (file: string, boundary = '----otpdBoundary7MA4YWxk') => t.app.inject({
    method: 'POST', url: '/system/importPolicy',
    headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    payload: `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="policy.cfg"\r\nContent-Type: application/octet-stream\r\n\r\n${file}\r\n--${boundary}--\r\n`,
  });

  test('the file field of a multipart body is imported; the refused policy is listed, the others stored', async () => {
    const file = '[lab_passthru]\nscope = authentication\naction = passthru\nrealm = lab\nuser = *\nclient = \n\n[bad]\nscope = enrollment\naction = tokenissuer=corp\nrealm = *\n\n[typo]\nscope = authentication\naction = otppin=7\nrealm = *\n';
    const res = await upload(file);
    const json = JSON.parse(res.body);
    assert.equal(json.result.status, true, res.body);
    assert.equal(json.result.value, 1);
    assert.deepEqual(json.detail.imported, ['lab_passthru']);
    assert.deepEqual(json.detail.refused.map((r: { name: string }) => r.name), ['bad', 'typo']);
    assert.match(json.detail.refused[0].reason, /tokenissuer.*not supported by otpd/);
    assert.match(json.detail.refused[1].reason, /otppin/);
    const names = (await t.services.db.kysely.selectFrom('policies').select('name').execute()).map((r) => r.name);
    assert.deepEqual(names, ['lab_passthru']);
  });

  test('a malformed multipart body is a 400 in the envelope, never a 500; credentials first', async () => {
    const broken = await t.app.inject({ method: 'POST', url: '/system/importPolicy', headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'multipart/form-data; boundary=abc' }, payload: '--abc\r\nno headers here' });
    assert.equal(broken.statusCode, 400, broken.body);
    assert.equal(JSON.parse(broken.body).result.error.code, 2101);
    const anonymous = await t.app.inject({ method: 'POST', url: '/system/importPolicy', headers: { 'content-type': 'multipart/form-data; boundary=abc' }, payload: '--abc\r\nno headers here' });
    assert.equal(anonymous.statusCode, 401);
    const bigFile = Array.from({ length: 200 }, (_, i) => `[p${i}]\nscope = enrollment\naction = maxtoken=${i + 1}\nrealm = lab\nuser = u${i}\n`).join('\n');
    assert.ok(bigFile.length > 8192);
    const big = JSON.parse((await upload(bigFile)).body);
    assert.equal(big.result.value, 200, 'a file larger than an ordinary parameter');
  });
});

describe('check_status polls a challenge for its owner only; LinOTP\'s health probes', () => {
  let t: ValidationFixture;
  before(async () => {
    t = await startValidationFixture();
    const init = (form: Record<string, string>) => t.admin('/admin/init', form).then((r) => assert.equal(value(r), true, r.body));
    await init({ type: 'hmac', serial: 'A1', otpkey: KEY, pin: 'apin', user: 'alice', realm: 'staff' });
    await init({ type: 'hmac', serial: 'B1', otpkey: KEY2, pin: 'bpin', user: 'bob', realm: 'staff' });
    await init({ type: 'hmac', serial: 'D1', otpkey: KEY2, pin: 'dpin', user: 'dave', realm: 'lab' });
    await t.policy('cr', 'authentication', 'challenge_response=hmac');
    await t.policy('pw_lab', 'authentication', 'otppin=1', { realm: 'lab' });
  });
  after(async () => t?.close());
  const status = (form: Record<string, string>) => t.check(form, '/validate/check_status');

  test('the owner\'s PIN shows the transaction; wrong PIN, other users and unknown ids all answer false', async () => {
    const tid = (await t.check({ user: 'alice', pass: 'apin' })).json.detail.transactionid;
    assert.ok(tid);
    const seen = await status({ user: 'alice', transactionid: tid, pass: 'apin' });
    assert.equal(value(seen), true, seen.body);
    assert.equal(seen.json.id, 0);
    assert.deepEqual(seen.json.detail.transactions[tid], {
      received_count: 0, received_tan: false, valid_tan: false, message: 'Please enter your otp value: ', status: 'open', token: { serial: 'A1', type: 'hmac' },
    });
    assert.equal(value(await status({ serial: 'A1', transactionid: tid, pass: 'apin' })), true, 'by serial');
    assert.equal(value(await status({ transactionid: tid, pass: 'apin' })), true, 'the owner of the challenge');
    const before = await t.failCount('A1');
    const refusals = [
      await status({ user: 'alice', transactionid: tid, pass: 'wrong' }),
      await status({ user: 'bob', transactionid: tid, pass: 'bpin' }),
      await status({ serial: 'B1', transactionid: tid, pass: 'bpin' }),
      await status({ user: 'alice', transactionid: '12345678901234567', pass: 'apin' }),
      await status({ user: 'nobody', transactionid: tid, pass: 'apin' }),
      await status({ user: 'alice', transactionid: tid }),
    ];
    for (const r of refusals) {
      assert.equal(r.body, refusals[1].body.replace(/"id": \d+/, `"id": 0`), 'one answer for every refusal');
      assert.equal(value(r), false);
      assert.equal(r.json.detail, undefined);
    }
    assert.equal(await t.failCount('A1'), before + 1, 'the wrong PIN was an attempt; the others touched nothing of alice');
    assert.equal(await t.failCount('B1'), 0);
    // answered: closed, valid
    assert.equal(value(await t.check({ user: 'alice', transactionid: tid, pass: hotp(SEED, 0) })), true);
    const done = await status({ user: 'alice', transactionid: tid, pass: 'apin' });
    assert.equal(done.json.detail.transactions[tid].status, 'closed');
    assert.equal(done.json.detail.transactions[tid].valid_tan, true);
    assert.equal(done.json.detail.transactions[tid].received_tan, true);
    assert.equal(await t.failCount('A1'), 0);
  });

  test('otppin=1: the user-store password, not the PIN', async () => {
    const tid = (await t.check({ user: 'dave', realm: 'lab', pass: 'DavePw1' })).json.detail.transactionid;
    assert.ok(tid);
    assert.equal(value(await status({ user: 'dave', realm: 'lab', transactionid: tid, pass: 'dpin' })), false);
    assert.equal(value(await status({ user: 'dave', realm: 'lab', transactionid: tid, pass: 'DavePw1' })), true);
  });

  test('a parallel burst of wrong PINs spends at most MaxFail attempts', async () => {
    await t.admin('/admin/set', { serial: 'B1', MaxFailCount: '3' });
    const tid = (await t.check({ user: 'bob', pass: 'bpin' })).json.detail.transactionid;
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => status({ user: 'bob', transactionid: tid, pass: `guess${i}` })));
    assert.ok(results.every((r) => value(r) === false));
    assert.equal(await t.failCount('B1'), 3);
    assert.equal(value(await status({ user: 'bob', transactionid: tid, pass: 'bpin' })), false, 'locked');
  });

  test('/maintenance/check_status and /healthcheck/status answer like /readyz, without credentials', async () => {
    for (const url of ['/readyz', '/maintenance/check_status', '/healthcheck/status']) {
      const r = await t.app.inject({ url });
      assert.equal(r.statusCode, 200, url);
      assert.deepEqual(JSON.parse(r.body), { status: 'ready' }, url);
    }
  });
});
