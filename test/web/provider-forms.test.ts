// The provider forms are derived from the classes' schemas (as /system/getProviderDef sends
// them): every key gets a field of the kind its type asks for, typed text becomes the JSON
// value the schema accepts, a secret left empty keeps the stored one through `__CENSORED__`
// (and is never sent when none is stored), and every path of an ERR2007 lands on its field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { providerModules } from '../../src/delivery/registry.ts';
import { allFields, apiConfig, postedValues, providerForm, refusalProblems, storedValues, type ProviderClass } from '../../src/web/manage/provider-forms.ts';

const cls = (className: string): ProviderClass => {
  const m = providerModules.find((x) => x.className === className)!;
  return { className, type: m.type, name: m.displayName, schema: JSON.parse(JSON.stringify(m.schema)) };
};
const kinds = (className: string) => Object.fromEntries(allFields(providerForm(cls(className))).map((f) => [f.key, f.kind]));

test('every schema key has a field of its kind; required only without a default', () => {
  for (const m of providerModules) {
    const form = providerForm(cls(m.className));
    assert.deepEqual(allFields(form).map((f) => f.key).sort(), Object.keys(JSON.parse(JSON.stringify(m.schema)).properties).sort(), m.className);
  }
  const http = kinds('HttpSMSProvider');
  assert.deepEqual([http.URL, http.HTTP_Method, http.PARAMETER, http.HEADERS, http.PASSWORD, http.MSISDN, http.PROXY, http.timeout], ['text', 'select', 'json', 'json', 'password', 'checkbox', 'text', 'text']);
  assert.deepEqual([kinds('SMTPEmailProvider').SMTP_PORT, kinds('SMTPEmailProvider').START_TLS, kinds('SMTPEmailProvider').TEMPLATE], ['number', 'checkbox', 'textarea']);
  assert.equal(kinds('RestSMSProvider').PAYLOAD, 'json');
  const fields = Object.fromEntries(allFields(providerForm(cls('HttpSMSProvider'))).map((f) => [f.key, f]));
  assert.equal(fields.URL!.required, true);
  assert.equal(fields.SMS_TEXT_KEY!.required, false);
  assert.equal(fields.SMS_TEXT_KEY!.placeholder, 'sms');
  assert.deepEqual(fields.HTTP_Method!.options, [{ value: '', label: '— default (POST) —' }, { value: 'GET', label: 'GET' }, { value: 'POST', label: 'POST' }]);
  const smpp = Object.fromEntries(allFields(providerForm(cls('SMPPSMSProvider'))).map((f) => [f.key, f]));
  assert.equal(smpp.password!.required, true);
});

test('typed text becomes the value the schema accepts; empty fields are left out; bad JSON is said next to its field', () => {
  const form = providerForm(cls('HttpSMSProvider'));
  const out = apiConfig(form, {
    'config.URL': ' https://sms.example.com/send ', 'config.HTTP_Method': 'GET', 'config.SMS_TEXT_KEY': '', 'config.MSISDN': 'true',
    'config.HEADERS': '{"X-Key": "k"}', 'config.SERVER_CERTIFICATE': 'false', 'config.timeout': '3', 'config.PROXY': '{"https": "http://proxy:3128"}',
  }, {});
  assert.deepEqual(out, { config: { URL: 'https://sms.example.com/send', HTTP_Method: 'GET', MSISDN: true, HEADERS: { 'X-Key': 'k' }, SERVER_CERTIFICATE: false, timeout: 3, PROXY: { https: 'http://proxy:3128' } } });
  const bad = apiConfig(form, { 'config.URL': 'x', 'config.HEADERS': "{'a': 1}", 'config.PARAMETER': '[1]' }, {});
  assert.ok('problems' in bad);
  assert.deepEqual(bad.problems.map((p) => p.field), ['PARAMETER', 'HEADERS']);
  assert.match(bad.problems[1]!.text, /^Not valid JSON: .*\(line 1, column 2\)\. Use double quotes/);
  assert.equal(bad.problems[0]!.text, 'Write a JSON object: {"name": "value", …}.');
});

test('secrets: empty keeps a stored one, is left out when none is stored; stored values show without them', () => {
  const form = providerForm(cls('SMTPEmailProvider'));
  const { values, secrets } = storedValues(form, { SMTP_SERVER: 'mail', SMTP_PORT: 2525, START_TLS: 'True', SMTP_PASSWORD: '__CENSORED__' });
  assert.deepEqual([values.SMTP_SERVER, values.SMTP_PORT, values.START_TLS, 'SMTP_PASSWORD' in values, secrets.SMTP_PASSWORD], ['mail', '2525', 'true', false, true]);
  const body = { 'config.SMTP_SERVER': 'mail', 'config.SMTP_PASSWORD': '' };
  assert.deepEqual(apiConfig(form, body, secrets), { config: { SMTP_SERVER: 'mail', SMTP_PASSWORD: '__CENSORED__' } });
  assert.deepEqual(apiConfig(form, body, {}), { config: { SMTP_SERVER: 'mail' } });
  assert.deepEqual(apiConfig(form, { ...body, 'config.SMTP_PASSWORD': 'new' }, secrets), { config: { SMTP_SERVER: 'mail', SMTP_PASSWORD: 'new' } });
  assert.equal('SMTP_PASSWORD' in postedValues(form, { ...body, 'config.SMTP_PASSWORD': 'new' }), false, 'a typed password is not shown again');
});

test('each path of ERR2007 lands on its field, also for a provider name with dots', () => {
  const form = providerForm(cls('HttpSMSProvider'));
  const message = 'Invalid provider config: providers.sms.gw.eu.config.URL: required; providers.sms.gw.eu.config.HEADERS.X-Key: has the wrong type; providers.sms.gw.eu.config.FOO: unknown key';
  assert.deepEqual(refusalProblems(form, 'sms', 'gw.eu', message, 2007).map((p) => [p.field, p.text]), [
    ['URL', 'Required.'], ['HEADERS', 'X-Key: Has the wrong type.'], [undefined, 'FOO: otpd does not know this key.'],
  ]);
  assert.deepEqual(refusalProblems(form, 'sms', 'gw', 'providers.sms.gw.timeout: must be seconds or "connect,read" seconds, got "soon"', 2007).map((p) => p.field), ['@timeout']);
  assert.deepEqual(refusalProblems(form, 'sms', 'a b', "Invalid parameter 'name': use 1-64 of A-Z a-z 0-9 _ . -", 2501).map((p) => p.field), ['@name']);
  assert.deepEqual(refusalProblems(form, 'sms', 'gw', 'Not allowed to overwrite the configuration of a managed provider', 2007).map((p) => [p.field, p.text]), [[undefined, 'Not allowed to overwrite the configuration of a managed provider.']]);
});
