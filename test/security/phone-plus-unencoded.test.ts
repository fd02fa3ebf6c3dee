// Invariant: a phone number from a request that starts with whitespace is refused with a clear
// error telling to URL-encode `+` as %2B. `curl -d phone=+4915123456789` sends the `+` unencoded,
// so it arrives as a space; trimming it and prefixing the default country would send codes to a
// different number (+49 4915123456789). Covers every place a phone comes from a request:
// /admin/init and /admin/set of sms tokens, /system/testProvider for SMS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const NUMBER = '4915123456789';

describe('an unencoded + in a phone number is refused', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    await t.services.config.set('DeliveryDefaultCountry', 'DE');
  });
  after(async () => t.close());

  /** POST a raw form body exactly as curl -d sends it. */
  const rawPost = async (path: string, body: string) => {
    const res = await t.app.inject({ method: 'POST', url: path, payload: body, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${t.apiKey}` } });
    return { status: res.statusCode, json: JSON.parse(res.body) };
  };
  const tokenCount = () => t.services.tokens.repository.count({});

  const assertRefused = (res: { status: number; json: any }, param: string) => {
    assert.equal(res.status, 200, 'an error in the envelope, no 500');
    assert.equal(res.json.result.status, false);
    assert.equal(res.json.result.error.code, Errors.invalidParameter.code);
    assert.match(res.json.result.error.message, new RegExp(`${param}.*%2B`));
  };

  test('/admin/init type=sms: refused, no token written; %2B works', async () => {
    const before = await tokenCount();
    for (const body of [`type=sms&serial=PLUS1&phone=+${NUMBER}`, `type=sms&serial=PLUS1&phone=%20${NUMBER}`, `type=sms&serial=PLUS1&phone=%09${NUMBER}`]) {
      assertRefused(await rawPost('/admin/init', body), 'phone');
    }
    assert.equal(await tokenCount(), before, 'no half-written token');
    const good = await rawPost('/admin/init', `type=sms&serial=PLUS1&phone=%2B${NUMBER}`);
    assert.equal(good.json.result.value, true);
    const token = await t.services.tokens.repository.bySerial('PLUS1');
    assert.equal(token?.info.phone, `+${NUMBER}`);
  });

  test('/admin/set phone: refused, the stored number is unchanged (also under a concurrent burst)', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => rawPost('/admin/set', `serial=PLUS1&phone=+${NUMBER.slice(0, -1)}${i}`)));
    for (const r of results) assertRefused(r, 'phone');
    assert.equal((await t.services.tokens.repository.bySerial('PLUS1'))?.info.phone, `+${NUMBER}`);
    const good = await rawPost('/admin/set', `serial=PLUS1&phone=%2B12015550123`);
    assert.equal(good.json.result.value['set phone'], 1);
    assert.equal((await t.services.tokens.repository.bySerial('PLUS1'))?.info.phone, '+12015550123');
  });

  test('/system/testProvider type=sms: refused before any provider is asked', async () => {
    assertRefused(await rawPost('/system/testProvider', `type=sms&name=nonexistent&to=+${NUMBER}`), 'to');
    assertRefused(await rawPost('/system/testProvider', `type=sms&name=nonexistent&phone=+${NUMBER}`), 'to');
  });
});
