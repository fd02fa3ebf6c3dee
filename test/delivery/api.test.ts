// The provider endpoints (spec 1.5 / 6.1) through app.inject: config validation with the
// position of a JSON error, secrets censored in answers and kept when the placeholder comes
// back, LinOTP's refusals, a real test message, and the delivery log.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';

describe('/system/*Provider and /system/deliveryLog', () => {
  let t: TestApp;
  let gw: HttpGateway;
  before(async () => {
    t = await startTestApp();
    gw = await new HttpGateway({ auth: { type: 'basic', user: 'gw', password: 's3cret-pw' }, respond: () => ({ body: 'OK queued' }) }).start();
  });
  after(async () => {
    await t.close();
    await gw.stop();
  });

  const gwConfig = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ URL: `${gw.url}/send`, USERNAME: 'gw', PASSWORD: 's3cret-pw', RETURN_SUCCESS: 'OK', ...extra });

  test('invalid JSON (single quotes) is refused, naming the problem and the position', async () => {
    const res = await t.admin('/system/setProvider', { type: 'sms', name: 'main', class: 'HttpSMSProvider', timeout: '5', config: "{'URL': 'http://x'}" });
    assert.equal(res.json.result.status, false);
    assert.equal(res.json.result.error.code, Errors.providerRefused.code);
    assert.match(res.json.result.error.message, /providers\.sms\.main\.config: invalid JSON: .* at position 1 \(line 1, column 2\) \(single quotes are not JSON/);
  });

  test('schema problems name the key; unknown class, wrong type, push and a missing timeout are refused', async () => {
    const missing = await t.admin('/system/setProvider', { type: 'sms', name: 'main', class: 'HttpSMSProvider', timeout: '5', config: '{"HTTP_Method": "PUT"}' });
    assert.equal(missing.json.result.error.code, Errors.providerRefused.code);
    assert.match(missing.json.result.error.message, /providers\.sms\.main\.config\.URL: required; providers\.sms\.main\.config\.HTTP_Method: must be one of/);
    const unknown = await t.admin('/system/setProvider', { type: 'sms', name: 'main', class: 'NoSuchProvider', timeout: '5', config: '{}' });
    assert.equal(unknown.json.result.error.code, Errors.providerRefused.code);
    const wrongType = await t.admin('/system/setProvider', { type: 'email', name: 'main', class: 'HttpSMSProvider', timeout: '5', config: '{}' });
    assert.equal(wrongType.json.result.error.code, Errors.providerRefused.code);
    const push = await t.admin('/system/setProvider', { type: 'push', name: 'p', class: 'x', timeout: '5', config: '{}' });
    assert.equal(push.json.result.error.code, Errors.providerRefused.code);
    const noTimeout = await t.admin('/system/setProvider', { type: 'sms', name: 'main', class: 'HttpSMSProvider', config: gwConfig() });
    assert.equal(noTimeout.json.result.error.code, Errors.missingParameter.code);
    const badTimeout = await t.admin('/system/setProvider', { type: 'sms', name: 'main', class: 'HttpSMSProvider', timeout: 'soon', config: gwConfig() });
    assert.equal(badTimeout.json.result.error.code, Errors.providerRefused.code);
    assert.match(badTimeout.json.result.error.message, /providers\.sms\.main\.timeout: must be seconds/);
    const ssrf = await t.admin('/system/setProvider', { type: 'sms', name: 'main', class: 'HttpSMSProvider', timeout: '5', config: JSON.stringify({ URL: 'http://169.254.169.254/' }) });
    assert.equal(ssrf.json.result.error.code, Errors.providerRefused.code);
    assert.match(ssrf.json.result.error.message, /providers\.sms\.main\.config\.URL: address 169\.254\.169\.254 \(link-local\) is not allowed/);
    const badName = await t.admin('/system/setProvider', { type: 'sms', name: 'main gateway', class: 'HttpSMSProvider', timeout: '5', config: gwConfig() });
    assert.equal(badName.json.result.error.code, Errors.invalidProviderName.code);
    assert.deepEqual((await t.admin('/system/getProvider', { type: 'sms' })).json.result.value, {});
  });

  test('secrets are censored; the placeholder sent back keeps the stored password', async () => {
    const set = await t.admin('/system/setProvider', { type: 'sms', name: 'main', class: 'smsprovider.HttpSMSProvider.HttpSMSProvider', timeout: '5', config: gwConfig() });
    assert.equal(set.json.result.value, true);
    const got = await t.admin('/system/getProvider', { type: 'sms' });
    assert.deepEqual(got.json.result.value, {
      main: { Class: 'HttpSMSProvider', Timeout: '5', Config: JSON.stringify({ URL: `${gw.url}/send`, USERNAME: 'gw', PASSWORD: '__CENSORED__', RETURN_SUCCESS: 'OK' }), Default: true },
    });
    assert.ok(!got.body.includes('s3cret-pw'));
    // Round trip: the admin edits another key and sends the config back as it was shown.
    const edited = JSON.parse(got.json.result.value.main.Config);
    edited.SMS_TEXT_KEY = 'text';
    assert.equal((await t.admin('/system/setProvider', { type: 'sms', name: 'main', class: 'HttpSMSProvider', timeout: '5', config: JSON.stringify(edited) })).json.result.value, true);
    const test1 = await t.admin('/system/testProvider', { type: 'sms', name: 'main', to: '+4915112345678', message: 'otpd test 1' });
    assert.equal(test1.json.result.value, true);
    assert.equal(test1.json.detail.status, 'accepted');
    const req = gw.requests.at(-1)!;
    assert.equal(req.authUser, 'gw');
    assert.deepEqual(req.body, { phone: '+4915112345678', text: 'otpd test 1' });
    // Stored encrypted: the password is not in the database in clear.
    const rows = await t.services.db.kysely.selectFrom('delivery_providers').selectAll().execute();
    assert.ok(!JSON.stringify(rows).includes('s3cret-pw'));
    const audit = await t.services.db.kysely.selectFrom('audit').selectAll().execute();
    assert.ok(!JSON.stringify(audit).includes('s3cret-pw'));
  });

  test('testProvider reports a refusal and a missing destination', async () => {
    await t.admin('/system/setProvider', { type: 'sms', name: 'strict', class: 'HttpSMSProvider', timeout: '5', config: gwConfig({ RETURN_SUCCESS: 'ACCEPTED' }) });
    const r = await t.admin('/system/testProvider', { type: 'sms', name: 'strict', to: '+4915112345678' });
    assert.equal(r.json.result.value, false);
    assert.deepEqual(r.json.detail, { status: 'failed', message: 'permanent: answer does not start with RETURN_SUCCESS' });
    const noTo = await t.admin('/system/testProvider', { type: 'sms', name: 'strict' });
    assert.equal(noTo.json.result.error.code, Errors.missingParameter.code);
    const unknown = await t.admin('/system/testProvider', { type: 'sms', name: 'nope', to: '+4915112345678' });
    assert.equal(unknown.json.result.error.code, Errors.providerRefused.code);
    const badTo = await t.admin('/system/testProvider', { type: 'sms', name: 'strict', to: 'call me' });
    assert.equal(badTo.json.result.error.code, Errors.invalidRecipient.code);
  });

  test('setDefaultProvider and delProvider with LinOTP refusals', async () => {
    const unknown = await t.admin('/system/setDefaultProvider', { type: 'sms', name: 'ghost' });
    assert.equal(unknown.json.result.value, false);
    assert.equal(unknown.json.detail.message, "Unknown provider! 'ghost'");
    assert.equal((await t.admin('/system/setDefaultProvider', { type: 'sms', name: 'strict' })).json.result.value, true);
    const list = (await t.admin('/system/getProvider', { type: 'sms' })).json.result.value;
    assert.deepEqual([list.main.Default, list.strict.Default], [false, true]);

    const delDefault = await t.admin('/system/delProvider', { type: 'sms', name: 'strict' });
    assert.equal(delDefault.json.result.value, false);
    assert.equal(delDefault.json.detail.message, 'Default provider could not be deleted!');

    const pol = await t.admin('/system/setPolicy', { name: 'smsroute', scope: 'authentication', action: 'sms_provider=strict main', realm: '*', user: '*', client: '' });
    assert.equal(pol.json.result.status, true, pol.body);
    const delUsed = await t.admin('/system/delProvider', { type: 'sms', name: 'main' });
    assert.equal(delUsed.json.result.value, false);
    assert.equal(delUsed.json.detail.message, 'Unable to delete - provider used in policies!\n[smsroute]');
    await t.admin('/system/delPolicy', { name: 'smsroute' });
    assert.equal((await t.admin('/system/delProvider', { type: 'sms', name: 'main' })).json.result.value, true);
    // The last one, even if default, may go.
    assert.equal((await t.admin('/system/delProvider', { type: 'sms', name: 'strict' })).json.result.value, true);
    assert.deepEqual((await t.admin('/system/getProvider', { type: 'sms' })).json.result.value, {});
  });

  test('managed providers: config hidden, changes need the password', async () => {
    const cfg = JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PASSWORD: 'mail-pw' });
    assert.equal((await t.admin('/system/setProvider', { type: 'email', name: 'mail', class: 'SMTPEmailProvider', timeout: '5', config: cfg, managed: 'm-pass' })).json.result.value, true);
    assert.deepEqual((await t.admin('/system/getProvider', { type: 'email', name: 'mail' })).json.result.value, { mail: { Class: 'SMTPEmailProvider', Timeout: '5', Managed: true, Default: true } });
    const overwrite = await t.admin('/system/setProvider', { type: 'email', name: 'mail', class: 'SMTPEmailProvider', timeout: '5', config: cfg });
    assert.equal(overwrite.json.result.error.code, Errors.providerRefused.code);
    const badMail = await t.admin('/system/testProvider', { type: 'email', name: 'mail', to: 'not an address' });
    assert.equal(badMail.json.result.error.code, Errors.invalidRecipient.code);
    assert.equal((await t.admin('/system/delProvider', { type: 'email', name: 'mail' })).json.result.status, false);
    assert.equal((await t.admin('/system/delProvider', { type: 'email', name: 'mail', managed: 'm-pass' })).json.result.value, true);
  });

  test('deliveryLog: masked destinations, statuses, filters; admins only', async () => {
    const log = await t.admin('/system/deliveryLog', { type: 'sms' });
    assert.equal(log.json.result.status, true);
    const v = log.json.result.value;
    assert.equal(v.total, 2);
    assert.deepEqual(v.entries.map((e: any) => [e.to, e.status, e.provider]), [
      ['+4915*******78', 'failed', 'strict'],
      ['+4915*******78', 'accepted', 'main'],
    ]);
    assert.ok(!log.body.includes('+4915112345678'));
    const accepted = await t.admin('/system/deliveryLog', { status: 'accepted', pagesize: '1' });
    assert.equal(accepted.json.result.value.total, 1);
    const anon = await t.post('/system/deliveryLog', {});
    assert.equal(anon.status, 401);
    const bad = await t.admin('/system/deliveryLog', { since: 'yesterday-ish' });
    assert.equal(bad.json.result.error.code, Errors.invalidParameter.code);
  });
  test("LinOTP keys otpd keeps only with the value it implements: CHECK_SSL and raise_exception false are refused, true accepted", async () => {
    const http = (extra: Record<string, unknown>) => t.admin('/system/setProvider', {
      type: 'sms', name: 'linotpkeys', class: 'HttpSMSProvider', timeout: '5', config: JSON.stringify({ URL: 'http://127.0.0.1:9/send', ...extra }),
    });
    for (const off of [false, 'False', '0']) {
      const res = await http({ CHECK_SSL: off });
      assert.equal(res.json.result.error?.code, Errors.providerRefused.code, res.body);
      assert.match(res.json.result.error.message, /providers\.sms\.linotpkeys\.config\.CHECK_SSL: false is not supported: .*SERVER_CERTIFICATE/);
    }
    assert.equal((await t.admin('/system/getProvider', { type: 'sms' })).json.result.value.linotpkeys, undefined, 'nothing stored');
    assert.equal((await http({ CHECK_SSL: 'True' })).json.result.value, true);
    const smtp = (extra: Record<string, unknown>) => t.admin('/system/setProvider', {
      type: 'sms', name: 'mailgw', class: 'SmtpSMSProvider', timeout: '5',
      config: JSON.stringify({ mailserver: '127.0.0.1', mailsender: 'otpd@example.org', mailto: '<phone>@sms.example.org', ...extra }),
    });
    const refused = await smtp({ raise_exception: false });
    assert.equal(refused.json.result.error?.code, Errors.providerRefused.code, refused.body);
    assert.match(refused.json.result.error.message, /config\.raise_exception: false is not supported/);
    assert.equal((await smtp({ raise_exception: true })).json.result.value, true);
  });
});
