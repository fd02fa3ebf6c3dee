// /system/setConfig checks every key against the runtime config catalogue: a key otpd does not
// read, a LinOTP key with no effect in otpd and a value outside its entry are refused with their
// own codes and nothing of the request is written; the families are accepted by their form;
// getConfig shows every default; the typed readers answer the default for a value written around
// the API that does not fit its entry.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { Errors } from '../../src/errors.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t.close();
});

const stored = (key: string) => t.services.db.kysely.selectFrom('config').selectAll().where('key', '=', key).executeTakeFirst();

test('unknown keys are refused in both forms, naming the key; nothing of the request is written', async () => {
  const single = await t.admin('/system/setConfig', { key: 'DefaultMaxFailCout', value: '5' });
  assert.equal(single.json.result.status, false);
  assert.equal(single.json.result.error.code, Errors.unknownConfigKey.code);
  assert.match(single.json.result.error.message, /'DefaultMaxFailCout'/);
  const multi = await t.admin('/system/setConfig', { DefaultOtpLen: '8', 'linotp.OATHTokenSupport': 'True' });
  assert.equal(multi.json.result.error.code, Errors.unknownConfigKey.code);
  assert.match(multi.json.result.error.message, /'OATHTokenSupport'/);
  assert.equal(await stored('DefaultOtpLen'), undefined, 'the known key of the refused request is not written');
  assert.equal(await stored('OATHTokenSupport'), undefined);
  const badName = await t.admin('/system/setConfig', { key: 'a b', value: '1' });
  assert.equal(badName.json.result.error.code, Errors.invalidConfigKey.code);
});

test('keys and values otpd would not act on are refused: AutoResyncTimeout, AutoResync=True, the always-on switches', async () => {
  const timeout = await t.admin('/system/setConfig', { key: 'AutoResyncTimeout', value: '240' });
  assert.equal(timeout.json.result.error.code, Errors.unsupportedConfigKey.code);
  for (const [key, value] of [['AutoResync', 'True'], ['DefaultResetFailCount', 'False'], ['policy_action_validation', 'False']]) {
    const r = await t.admin('/system/setConfig', { key, value });
    assert.equal(r.json.result.error.code, Errors.invalidConfigValue.code, `${key}=${value}: ${r.body}`);
    assert.equal(await stored(key), undefined, key);
  }
  const setDefault = await t.admin('/system/setDefault', { DefaultResetFailCount: 'False' });
  assert.equal(setDefault.json.result.error.code, Errors.invalidConfigValue.code);
  assert.equal((await t.admin('/system/setDefault', { DefaultResetFailCount: 'True' })).json.result.status, true);
});

test('values that were accepted and then ignored are refused, naming the key and the rule', async () => {
  for (const [key, value, why] of [
    ['PrependPin', 'maybe', /'PrependPin': use True or False/],
    ['mayOverwriteClient', '127.0.0.1, proxy.example.com', /not an IP address: proxy\.example\.com/],
    ['DeliveryBlockedPrefixes', '+4990, +44 870', /not an E\.164 prefix: \+44 870/],
    ['DeliveryDefaultCountry', 'Germany', /ISO country/],
    ['DeliveryDefaultCountry.paris', 'XX', /ISO country/],
    ['DeliveryAllowedCountryCodes', '49,DE', /not a calling code: DE/],
    ['DeliveryWaitMs', '120000', /between 100 and 60000/],
    ['DeliveryPollMs', '50', /between 100 and 60000/],
  ] as const) {
    const r = await t.admin('/system/setConfig', { key, value });
    assert.equal(r.json.result.error.code, Errors.invalidConfigValue.code, `${key}=${value}: ${r.body}`);
    assert.match(r.json.result.error.message, why);
    assert.equal(await stored(key), undefined, key);
  }
});

test('families are accepted by their form and read through the typed readers', async () => {
  const r = await t.admin('/system/setConfig', {
    'DeliveryDefaultCountry.paris': 'FR', SMS_CHALLENGE_PROMPT: 'Code sent', 'ldapresolver.LDAPURI.corp': 'ldap://ldap.example.com',
  });
  assert.equal(r.json.result.status, true, r.body);
  assert.equal(t.services.config.string('DeliveryDefaultCountry.paris'), 'FR');
  assert.equal(t.services.config.string('DeliveryDefaultCountry.lyon'), '', 'unset family key');
  assert.equal(t.services.config.string('SMS_CHALLENGE_PROMPT'), 'Code sent');
  assert.equal(t.services.config.get('ldapresolver.LDAPURI.corp'), 'ldap://ldap.example.com');
});

test('getConfig shows the default of every key that has one; setConfig and delConfig move the typed value', async () => {
  const all = (await t.admin('/system/getConfig', {})).json.result.value;
  assert.equal(all.DeliveryWaitMs, '3000');
  assert.equal(all.UserCacheTTL, '120');
  assert.equal(all.DefaultMaxFailCount, '10');
  assert.equal(all.SMSProviderConfig, undefined, 'no default, not stored');
  assert.equal(t.services.config.number('DeliveryWaitMs'), 3000);
  await t.admin('/system/setConfig', { key: 'DeliveryWaitMs', value: '250' });
  assert.equal(t.services.config.number('DeliveryWaitMs'), 250);
  await t.admin('/system/setConfig', { key: 'PrependPin', value: 'off' });
  assert.equal(t.services.config.bool('PrependPin'), false);
  await t.admin('/system/delConfig', { key: 'PrependPin' });
  await t.admin('/system/delConfig', { key: 'DeliveryWaitMs' });
  assert.equal(t.services.config.bool('PrependPin'), true);
  assert.equal(t.services.config.number('DeliveryWaitMs'), 3000);
});

const writeAround = (key: string, value: string, type = '') => t.services.db.kysely.insertInto('config').values({ key, value, type, description: '' }).execute();

test('a value written around the API that does not fit its entry reads as the default', async () => {
  await writeAround('DefaultCountWindow', '100000');
  await writeAround('DeliveryAllowedHosts', 'http://x/');
  await t.services.config.load();
  assert.equal(t.services.config.number('DefaultCountWindow'), 10, 'the typed value is the default');
  assert.deepEqual(t.services.config.list('DeliveryAllowedHosts'), []);
  await t.services.config.delete('DefaultCountWindow');
  await t.services.config.delete('DeliveryAllowedHosts');
  await t.services.config.load();
  // a reload refuses the bad row and keeps the default in force
  await t.services.db.kysely.insertInto('config').values({ key: 'SMSBlockingTimeout', value: 'soon', type: '', description: '' }).execute();
  await t.services.config.load();
  assert.deepEqual(t.services.config.rejected, [{ key: 'SMSBlockingTimeout', problem: 'not an integer' }]);
  assert.equal(t.services.config.number('SMSBlockingTimeout'), 30);
  await t.services.db.kysely.deleteFrom('config').where('key', '=', 'SMSBlockingTimeout').execute();
  await t.services.config.load();
  assert.throws(() => t.services.config.string('NoSuchKey' as 'SMS_CHALLENGE_PROMPT'), (e: { code?: number }) => e.code === Errors.unknownConfigKey.code);
});

test('a known key stored as type=password is screened on load like any other (decrypted first)', async () => {
  await writeAround('DefaultOtpLen', t.services.keyring.encrypt('config', '12'), 'password');
  const row = await stored('DefaultOtpLen');
  assert.match(row!.value, /^g1:/);
  await t.services.config.load();
  assert.deepEqual(t.services.config.rejected, [{ key: 'DefaultOtpLen', problem: 'must be between 6 and 10' }]);
  assert.equal(t.services.config.number('DefaultOtpLen'), 6);
  assert.equal(t.services.config.get('DefaultOtpLen'), '6', 'the refused row is not kept in force, not even as text');
  await t.services.config.delete('DefaultOtpLen');
  await t.services.config.load();
  assert.deepEqual(t.services.config.rejected, []);
});

test('ConfigService.set itself refuses a value its entry does not allow (every write path: realms, import, config apply), nothing stored', async () => {
  const before = await stored('DefaultMaxFailCount');
  for (const value of ['0', '-1', 'ten', '1e9']) {
    await assert.rejects(t.services.config.set('DefaultMaxFailCount', value), (e: { code?: number }) => e.code === Errors.invalidConfigValue.code, value);
  }
  assert.deepEqual(await stored('DefaultMaxFailCount'), before);
  await t.services.config.set('DefaultMaxFailCount', '7');
  assert.equal((await stored('DefaultMaxFailCount'))?.value, '7');
});
