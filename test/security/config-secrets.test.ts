// Invariant: configuration secrets never leave otpd in clear and are stored encrypted.
// Secrets are entries sent with `type=password`, entries whose key names a secret
// (`…password`, `…secret`, `BINDPW`, `apikey`, …) and the secret fields inside LinOTP's legacy
// `SMSProviderConfig`/`EmailProviderConfig` JSON (the provider class's secret keys plus
// secret-named nested keys). setConfig's echo, getConfig (all and `key=`), the audit row and the
// log show `__CENSORED__` instead; the database holds only ciphertext. Sending the placeholder
// back keeps the stored secret byte for byte (also one nested field of the legacy JSON) and never
// downgrades it to plain text; a placeholder with nothing stored behind it is refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const CENSORED = '__CENSORED__';
const SMS_PASSWORD = 'sms-gw-pass-7f3a';
const SMS_APIKEY = 'apikey-91c2d4';
const SMS_BEARER = 'Bearer tok-5e6f7a';
const MAIL_PASSWORD = 'smtp-pass-2b8c';
const TYPED = 'typed-secret-4d1e';
const NAMED = 'bind-pw-6a0b';
const ALL = [SMS_PASSWORD, SMS_APIKEY, SMS_BEARER, 'tok-5e6f7a', MAIL_PASSWORD, TYPED, NAMED];

const logLines: string[] = [];
let t: TestApp;
before(async () => {
  const logger = pino({ level: 'trace' }, { write: (s: string) => void logLines.push(s) });
  t = await startTestApp({ logger });
});
after(async () => {
  await t.close();
});

const smsConfig = {
  URL: 'http://127.0.0.1:9/send',
  USERNAME: 'otpd',
  PASSWORD: SMS_PASSWORD,
  PARAMETER: { from: 'otpd', apikey: SMS_APIKEY },
  HEADERS: { Authorization: SMS_BEARER },
  RETURN_SUCCESS: 'OK',
};
const mailConfig = { SMTP_SERVER: '127.0.0.1', SMTP_PORT: 2525, SMTP_USER: 'mailer', SMTP_PASSWORD: MAIL_PASSWORD, EMAIL_FROM: 'otp@example.com' };

async function storedRow(key: string) {
  return t.services.db.kysely.selectFrom('config').selectAll().where('key', '=', key).executeTakeFirst();
}

function assertNoSecret(text: string, where: string) {
  for (const s of ALL) assert.ok(!text.includes(s), `${where} contains the secret ${s}`);
}

test('secrets are censored in every answer, the audit and the log, and stored encrypted', async () => {
  const multi = await t.admin('/system/setConfig', {
    SMSProvider: 'HttpSMSProvider',
    SMSProviderConfig: JSON.stringify(smsConfig),
    'ldapresolver.BINDPW.corp': NAMED,
    'smtp.token': TYPED,
    'smtp.token.type': 'password',
  });
  assert.equal(multi.json.result.status, true, multi.body);
  assertNoSecret(multi.body, 'setConfig echo');
  const echoed = Object.keys(multi.json.result.value);
  assert.ok(echoed.includes(`setConfig ldapresolver.BINDPW.corp:${CENSORED}`), echoed.join('\n'));
  assert.ok(echoed.includes(`setConfig smtp.token:${CENSORED}`), echoed.join('\n'));
  const smsEcho = echoed.find((k) => k.startsWith('setConfig SMSProviderConfig:'));
  assert.ok(smsEcho, echoed.join('\n'));
  const echoedJson = JSON.parse(smsEcho.slice('setConfig SMSProviderConfig:'.length));
  assert.equal(echoedJson.PASSWORD, CENSORED);
  assert.equal(echoedJson.URL, smsConfig.URL, 'non-secret fields stay readable');

  const single = await t.admin('/system/setConfig', { key: 'EmailProviderConfig', value: JSON.stringify(mailConfig) });
  assert.deepEqual(single.json.result.value, { 'setConfig EmailProviderConfig': true });
  await t.admin('/system/setConfig', { key: 'EmailProvider', value: 'SMTPEmailProvider' });

  const all = await t.admin('/system/getConfig', {});
  assertNoSecret(all.body, 'getConfig');
  const values = all.json.result.value;
  assert.equal(values['ldapresolver.BINDPW.corp'], CENSORED);
  assert.equal(values['smtp.token'], CENSORED);
  const sms = JSON.parse(values.SMSProviderConfig);
  assert.deepEqual(sms, { ...smsConfig, PASSWORD: CENSORED, PARAMETER: { from: 'otpd', apikey: CENSORED }, HEADERS: { Authorization: CENSORED } });
  const mail = JSON.parse(values.EmailProviderConfig);
  assert.deepEqual(mail, { ...mailConfig, SMTP_PASSWORD: CENSORED });

  for (const key of ['SMSProviderConfig', 'EmailProviderConfig', 'ldapresolver.BINDPW.corp', 'smtp.token', 'linotp.smtp.token']) {
    const one = await t.admin('/system/getConfig', { key });
    assert.equal(one.json.result.status, true, one.body);
    assertNoSecret(one.body, `getConfig key=${key}`);
  }
  assert.equal((await t.admin('/system/getConfig', { key: 'smtp.token' })).json.result.value['getConfig smtp.token'], CENSORED);
  assert.equal(JSON.parse((await t.admin('/system/getConfig', { key: 'SMSProviderConfig' })).json.result.value['getConfig SMSProviderConfig']).PASSWORD, CENSORED);

  // at rest: ciphertext only
  const rows = await t.services.db.kysely.selectFrom('config').selectAll().execute();
  assertNoSecret(JSON.stringify(rows), 'config table');
  for (const key of ['SMSProviderConfig', 'EmailProviderConfig', 'ldapresolver.BINDPW.corp', 'smtp.token']) {
    assert.match((await storedRow(key))!.value, /^g1:/, `${key} stored encrypted`);
  }
  // otpd itself still reads the clear values
  assert.equal(JSON.parse(t.services.config.get('SMSProviderConfig')!).PASSWORD, SMS_PASSWORD);
  assert.equal(t.services.config.get('ldapresolver.BINDPW.corp'), NAMED);

  const audit = await t.services.db.kysely.selectFrom('audit').selectAll().execute();
  assert.ok(audit.some((r) => r.action === 'system/setConfig'));
  assertNoSecret(JSON.stringify(audit), 'audit table');
  const auditApi = await t.admin('/audit/search', { rp: '100' });
  assertNoSecret(auditApi.body, '/audit/search');
  assertNoSecret(logLines.join(''), 'log');
});

test('the placeholder sent back keeps the stored secret, its ciphertext and its type', async () => {
  await t.admin('/system/setConfig', { 'rt.secret': TYPED, 'rt.secret.type': 'password' });
  const before = await storedRow('rt.secret');
  // the multi form without `.type` (a client that only echoes what getConfig showed)
  const back = await t.admin('/system/setConfig', { 'rt.secret': CENSORED });
  assert.equal(back.json.result.status, true, back.body);
  assert.deepEqual(await storedRow('rt.secret'), before, 'row unchanged, no downgrade to plain text');
  // the key/value form, with and without type
  await t.admin('/system/setConfig', { key: 'rt.secret', value: CENSORED });
  await t.admin('/system/setConfig', { key: 'rt.secret', value: CENSORED, type: 'password' });
  assert.deepEqual(await storedRow('rt.secret'), before);
  assert.equal(t.services.config.get('rt.secret'), TYPED);
  // a new value without type= stays a password entry
  await t.admin('/system/setConfig', { key: 'rt.secret', value: 'replaced-secret-1' });
  const replaced = await storedRow('rt.secret');
  assert.equal(replaced!.type, 'password');
  assert.match(replaced!.value, /^g1:/);
  assert.equal(t.services.config.get('rt.secret'), 'replaced-secret-1');
});

test('legacy provider JSON: a placeholder keeps that nested field, other fields change', async () => {
  await t.admin('/system/setConfig', { key: 'SMSProvider', value: 'HttpSMSProvider' });
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify(smsConfig) });
  const shown = JSON.parse((await t.admin('/system/getConfig', { key: 'SMSProviderConfig' })).json.result.value['getConfig SMSProviderConfig']);
  const before = await storedRow('SMSProviderConfig');
  // exactly what getConfig showed: nothing changes, not even the ciphertext
  const same = await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify(shown) });
  assert.equal(same.json.result.status, true, same.body);
  assert.deepEqual(await storedRow('SMSProviderConfig'), before);
  // one field edited, the censored ones sent back as placeholders
  const edited = { ...shown, URL: 'http://127.0.0.1:9/other', PARAMETER: { ...shown.PARAMETER, from: 'edited' } };
  const res = await t.admin('/system/setConfig', { SMSProviderConfig: JSON.stringify(edited) });
  assert.equal(res.json.result.status, true, res.body);
  assertNoSecret(res.body, 'setConfig echo');
  const stored = JSON.parse(t.services.config.get('SMSProviderConfig')!);
  assert.deepEqual(stored, { ...smsConfig, URL: 'http://127.0.0.1:9/other', PARAMETER: { from: 'edited', apikey: SMS_APIKEY } });
  assert.match((await storedRow('SMSProviderConfig'))!.value, /^g1:/);
  // a new nested secret replaces the old one
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify({ ...edited, PASSWORD: 'new-gw-pass-1' }) });
  assert.equal(JSON.parse(t.services.config.get('SMSProviderConfig')!).PASSWORD, 'new-gw-pass-1');
  assert.equal(JSON.parse(t.services.config.get('SMSProviderConfig')!).PARAMETER.apikey, SMS_APIKEY);
});

test('a placeholder with no stored secret behind it is refused, nothing written', async () => {
  const top = await t.admin('/system/setConfig', { key: 'never.password', value: CENSORED, type: 'password' });
  assert.equal(top.json.result.status, false);
  assert.equal(top.json.result.error.code, Errors.configPlaceholderWithoutSecret.code);
  assert.equal(await storedRow('never.password'), undefined);
  await t.admin('/system/setConfig', { key: 'EmailProviderConfig', value: JSON.stringify({ SMTP_SERVER: '127.0.0.1' }) });
  const before = await storedRow('EmailProviderConfig');
  const nested = await t.admin('/system/setConfig', { key: 'EmailProviderConfig', value: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PASSWORD: CENSORED }) });
  assert.equal(nested.json.result.status, false, nested.body);
  assert.equal(nested.json.result.error.code, Errors.configPlaceholderWithoutSecret.code);
  assert.match(nested.json.result.error.message, /SMTP_PASSWORD/);
  assert.deepEqual(await storedRow('EmailProviderConfig'), before);
  // the multi form checks every key before writing any (realmbox=True alone would be stored)
  const multi = await t.admin('/system/setConfig', { realmbox: 'True', 'other.password': CENSORED });
  assert.equal(multi.json.result.status, false);
  assert.equal(multi.json.result.error.code, Errors.configPlaceholderWithoutSecret.code);
  assert.equal(await storedRow('realmbox'), undefined);
});

test('a legacy value that is not JSON is censored whole and round-trips whole', async () => {
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: `{'URL': 'http://127.0.0.1:9/x', 'PASSWORD': '${SMS_PASSWORD}'}` });
  const shown = (await t.admin('/system/getConfig', { key: 'SMSProviderConfig' })).json.result.value['getConfig SMSProviderConfig'];
  assert.equal(shown, CENSORED);
  const before = await storedRow('SMSProviderConfig');
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: CENSORED });
  assert.deepEqual(await storedRow('SMSProviderConfig'), before);
});

test('plain-text secrets stored by an older otpd are encrypted on load', async () => {
  await t.services.db.kysely.insertInto('config').values([
    { key: 'old.password', value: NAMED, type: '', description: '' },
    { key: 'VoiceProviderConfig', value: JSON.stringify({ PASSWORD: SMS_PASSWORD }), type: '', description: '' },
  ]).execute();
  await t.services.config.load();
  assert.match((await storedRow('old.password'))!.value, /^g1:/);
  assert.match((await storedRow('VoiceProviderConfig'))!.value, /^g1:/);
  assert.equal(t.services.config.get('old.password'), NAMED);
  const all = await t.admin('/system/getConfig', {});
  assertNoSecret(all.body, 'getConfig');
});

test('concurrent burst of placeholder round trips never changes or exposes the secret', async () => {
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify(smsConfig) });
  const shown = (await t.admin('/system/getConfig', { key: 'SMSProviderConfig' })).json.result.value['getConfig SMSProviderConfig'];
  await t.admin('/system/setConfig', { 'burst.password': TYPED, 'burst.password.type': 'password' });
  const before = await storedRow('burst.password');
  const answers = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    i % 3 === 0 ? t.admin('/system/setConfig', { 'burst.password': CENSORED })
      : i % 3 === 1 ? t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: shown })
        : t.admin('/system/getConfig', {}),
  ));
  for (const a of answers) {
    assert.equal(a.json.result.status, true, a.body);
    assertNoSecret(a.body, 'burst answer');
  }
  assert.deepEqual(await storedRow('burst.password'), before);
  assert.deepEqual(JSON.parse(t.services.config.get('SMSProviderConfig')!), smsConfig);
});

test('a password inside a gateway URL (user:pw@host) is censored and round-trips', async () => {
  const urlSecret = 'url-pass-3c9d';
  const config = { URL: `http://otpd:${urlSecret}@127.0.0.1:9/send?x=1`, RETURN_SUCCESS: 'OK' };
  await t.admin('/system/setConfig', { key: 'SMSProvider', value: 'HttpSMSProvider' });
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify(config) });
  const res = await t.admin('/system/getConfig', { key: 'SMSProviderConfig' });
  assert.ok(!res.body.includes(urlSecret), res.body);
  const shown = JSON.parse(res.json.result.value['getConfig SMSProviderConfig']);
  assert.equal(shown.URL, `http://otpd:${CENSORED}@127.0.0.1:9/send?x=1`);
  const before = await storedRow('SMSProviderConfig');
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify(shown) });
  assert.deepEqual(await storedRow('SMSProviderConfig'), before, 'unchanged, ciphertext included');
  await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify({ ...shown, RETURN_SUCCESS: 'ACCEPTED' }) });
  assert.deepEqual(JSON.parse(t.services.config.get('SMSProviderConfig')!), { ...config, RETURN_SUCCESS: 'ACCEPTED' });
  const moved = await t.admin('/system/setConfig', { key: 'SMSProviderConfig', value: JSON.stringify({ ...shown, URL: `http://otpd:${CENSORED}@127.0.0.1:9/moved` }) });
  assert.equal(moved.json.result.status, true, moved.body);
  assert.equal(JSON.parse(t.services.config.get('SMSProviderConfig')!).URL, `http://otpd:${urlSecret}@127.0.0.1:9/moved`);
});

test('the provider imported from the legacy keys shows the same secrets censored in getProvider, and they round-trip', async () => {
  const app = await startTestApp();
  try {
    const urlSecret = 'url-pass-8e1f';
    const config = { ...smsConfig, URL: `http://otpd:${urlSecret}@127.0.0.1:9/send` };
    await app.admin('/system/setConfig', { SMSProvider: 'HttpSMSProvider', SMSProviderConfig: JSON.stringify(config) });
    const got = await app.admin('/system/getProvider', { type: 'sms' });
    assert.ok(got.json.result.value.imported_default, got.body);
    for (const s of [...ALL, urlSecret]) assert.ok(!got.body.includes(s), `getProvider shows ${s}`);
    const shown = JSON.parse(got.json.result.value.imported_default.Config);
    assert.equal(shown.PARAMETER.apikey, CENSORED);
    assert.equal(shown.HEADERS.Authorization, CENSORED);
    // sent back as shown, with one field edited: the secrets stay
    const set = await app.admin('/system/setProvider', { type: 'sms', name: 'imported_default', class: 'HttpSMSProvider', timeout: '5', config: JSON.stringify({ ...shown, RETURN_SUCCESS: 'ACCEPTED' }) });
    assert.equal(set.json.result.status, true, set.body);
    const row = await app.services.db.kysely.selectFrom('delivery_providers').selectAll().where('name', '=', 'imported_default').executeTakeFirstOrThrow();
    const stored = JSON.parse(app.services.keyring.decryptString('config', row.config_enc));
    assert.deepEqual(stored, { ...config, RETURN_SUCCESS: 'ACCEPTED' });
  } finally {
    await app.close();
  }
});
