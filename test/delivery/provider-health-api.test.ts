// What /system/getProvider adds for the management UI in `detail` (LinOTP's `value` stays as it
// was): each provider's health after a real failover (a gateway on a closed loopback port is
// backing off with its connection error, the one that took the message is healthy), the
// default provider, and the failover chains of the `sms_provider` policies in the order the
// dispatcher tries them. /system/deliveryLog pages oldest first with `sortorder=asc`.
// /system/getProviderDef gives each class's config schema (JSON Schema with `secret: true`).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { freePort } from '../fixtures/slapd.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('/system/getProvider detail: health, default, failover order', () => {
  let t: TestApp;
  let gw: HttpGateway;
  let closedPort: number;
  before(async () => {
    t = await startTestApp();
    gw = await new HttpGateway({ respond: () => ({ body: 'OK', headers: { 'X-Message-Id': 'gw-42' } }) }).start();
    closedPort = await freePort();
  });
  after(async () => {
    await t.close();
    await gw.stop();
  });

  const set = async (name: string, url: string, extra: Record<string, string> = {}) => {
    const r = await t.admin('/system/setProvider', { type: 'sms', name, class: 'HttpSMSProvider', timeout: '2', config: JSON.stringify({ URL: url }), ...extra });
    assert.equal(r.json.result.value, true, r.body);
  };

  test('a failover marks the dead gateway down; the policy chain and the default are reported', async () => {
    await set('live', `${gw.url}/send`, { default: 'true' });
    await set('dead', `http://127.0.0.1:${closedPort}/send`);
    const pol = await t.admin('/system/setPolicy', { name: 'smsroute', scope: 'authentication', action: 'sms_provider=dead live', realm: 'corp', user: '*', client: '' });
    assert.equal(pol.json.result.status, true, pol.body);

    const before = await t.admin('/system/getProvider', { type: 'sms' });
    assert.deepEqual(before.json.detail.health.dead, { status: 'healthy', failures: 0, down_until: 0, last_error: '' });
    assert.equal(before.json.detail.default, 'live');
    assert.deepEqual(before.json.detail.failover, [{ policy: 'smsroute', active: true, realm: 'corp', user: '*', client: '*', providers: ['dead', 'live'] }]);
    // LinOTP's value is unchanged: no health in it
    assert.deepEqual(Object.keys(before.json.result.value.dead).sort(), ['Class', 'Config', 'Default', 'Timeout']);

    // a real message along the chain: dead refuses the connection, live takes it
    const delivery = t.services.delivery;
    const { id } = await t.services.db.kysely.transaction().execute((trx) =>
      delivery.enqueue(trx, { channel: 'sms', to: '+4915123456789', text: 'code 123456' }, { providers: ['dead', 'live'], idempotencyKey: 'health-1', expiresAt: Date.now() + 60_000 }));
    const result = await delivery.dispatchAndWait(id, 10_000);
    assert.equal(result.status, 'accepted');

    const after = await t.admin('/system/getProvider', { type: 'sms' });
    const dead = after.json.detail.health.dead;
    assert.equal(dead.status, 'backing-off');
    assert.equal(dead.failures, 1);
    assert.ok(dead.down_until > Date.now(), 'the back-off ends in the future');
    assert.match(dead.last_error, /ECONNREFUSED|refused/i);
    assert.deepEqual(after.json.detail.health.live, { status: 'healthy', failures: 0, down_until: 0, last_error: '' });

    // `name` narrows value and health, the default and the chains stay those of the type
    const one = await t.admin('/system/getProvider', { type: 'sms', name: 'dead' });
    assert.deepEqual(Object.keys(one.json.result.value), ['dead']);
    assert.deepEqual(Object.keys(one.json.detail.health), ['dead']);
    assert.equal(one.json.detail.default, 'live');

    // no e-mail provider: nothing, no default, no chain
    const email = await t.admin('/system/getProvider', { type: 'email' });
    assert.deepEqual([email.json.result.value, email.json.detail], [{}, { health: {}, default: null, failover: [] }]);
  });

  test('deliveryLog sortorder=asc pages oldest first; another value is refused', async () => {
    for (const to of ['+4915123456780', '+4915123456781']) {
      const r = await t.admin('/system/testProvider', { type: 'sms', name: 'live', to });
      assert.equal(r.json.detail.provider_message_id, 'gw-42');
    }
    const newest = (await t.admin('/system/deliveryLog', {})).json.result.value.entries.map((e: { id: number }) => e.id);
    const oldest = (await t.admin('/system/deliveryLog', { sortorder: 'asc' })).json.result.value.entries.map((e: { id: number }) => e.id);
    assert.equal(newest.length, 3);
    assert.deepEqual(oldest, [...newest].reverse());
    const bad = await t.admin('/system/deliveryLog', { sortorder: 'sideways' });
    assert.equal(bad.json.result.error.code, Errors.invalidParameter.code);
  });

  test('getProviderDef: every class with its type, name and JSON schema; secrets marked', async () => {
    const sms = (await t.admin('/system/getProviderDef', { type: 'sms' })).json.result.value;
    assert.deepEqual(Object.keys(sms).sort(), ['DeviceSMSProvider', 'HttpSMSProvider', 'RestSMSProvider', 'SMPPSMSProvider', 'SmtpSMSProvider']);
    const http = sms.HttpSMSProvider;
    assert.equal(http.type, 'sms');
    assert.equal(http.name, 'HTTP SMS gateway');
    assert.ok(http.aliases.includes('linotp.provider.smsprovider.HttpSMSProvider'));
    assert.deepEqual(http.schema.required, ['URL']);
    assert.equal(http.schema.properties.PASSWORD.secret, true);
    assert.equal(http.schema.properties.SMS_TEXT_KEY.default, 'sms');
    const all = (await t.admin('/system/getProviderDef')).json.result.value;
    assert.equal(all.SMTPEmailProvider.type, 'email');
    assert.equal(all.SMTPEmailProvider.schema.properties.SMTP_PASSWORD.secret, true);
    assert.equal((await t.admin('/system/getProviderDef', { type: 'voice' })).json.result.error.code, Errors.providerRefused.code);
    assert.equal((await t.post('/system/getProviderDef', {})).status, 401);
  });
});
