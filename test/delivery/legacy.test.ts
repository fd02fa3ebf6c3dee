// LinOTP's legacy provider keys import unchanged: SMSProvider + SMSProviderConfig (and the
// e-mail pair) become the default provider `imported_default` when none of that type exists;
// a bad legacy config is refused without breaking anything; an existing provider is kept.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';

let t: TestApp;
let gw: HttpGateway;
before(async () => {
  t = await startTestApp();
  gw = await new HttpGateway({ respond: () => ({ body: 'OK' }) }).start();
});
after(async () => {
  await t.close();
  await gw.stop();
});

test('legacy SMSProvider/SMSProviderConfig become imported_default and send', async () => {
  const bad = await t.admin('/system/setConfig', { SMSProvider: 'linotp.provider.smsprovider.HttpSMSProvider', SMSProviderConfig: "{'URL': 'x'}" });
  assert.equal(bad.json.result.status, true, 'the config keys themselves are stored');
  assert.deepEqual((await t.admin('/system/getProvider', { type: 'sms' })).json.result.value, {}, 'an invalid legacy config imports nothing');
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify({ URL: `${gw.url}/send`, RETURN_SUCCESS: 'OK' }) });
  const providers = (await t.admin('/system/getProvider', { type: 'sms' })).json.result.value;
  assert.deepEqual(Object.keys(providers), ['imported_default']);
  assert.equal(providers.imported_default.Default, true);
  assert.equal(providers.imported_default.Class, 'HttpSMSProvider');
  const sent = await t.admin('/system/testProvider', { type: 'sms', name: 'imported_default', phone: '+4915112345678' });
  assert.equal(sent.json.result.value, true, sent.body);
  assert.equal(gw.requests.length, 1);
  // a later change of the legacy keys does not overwrite the provider that now exists
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify({ URL: 'http://127.0.0.1:9/other' }) });
  assert.match(JSON.stringify((await t.admin('/system/getProvider', { type: 'sms' })).json.result.value), new RegExp(`${gw.url.replace(/[/.:]/g, '.')}`));
});
