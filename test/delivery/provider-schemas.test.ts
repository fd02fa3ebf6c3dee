/**
 * Provider classes hand their `create` the config only after it passed the class schema: a
 * missing required key or a wrong type fails with ConfigValidationError naming `config.<key>`
 * before anything is built; the secret keys (censoring, log redaction) come from the schema's
 * `secret: true` and every secret-looking key of a schema is marked.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { ConfigValidationError } from '../../src/delivery/config.ts';
import { deliveryHostPolicy } from '../../src/delivery/providers.ts';
import { censorConfig, CENSORED, findProviderModule, providerModules } from '../../src/delivery/registry.ts';
import type { ProviderContext } from '../../src/delivery/types.ts';

const ctx: ProviderContext = {
  logger: pino({ level: 'silent' }),
  timeoutMs: 3000,
  connectTimeoutMs: 2000,
  hosts: deliveryHostPolicy(),
  templateRoot: '/nonexistent',
};

/** A config of each class that passes its schema and its create-time checks (no connection is made). */
const GOOD: Record<string, Record<string, unknown>> = {
  HttpSMSProvider: { URL: 'https://sms.example.com/send', USERNAME: 'otpd', PASSWORD: 'gw-secret' },
  RestSMSProvider: { URL: 'https://sms.example.com/v1', PAYLOAD: { to: '<phone>', text: '' }, SMS_TEXT_KEY: 'text', SMS_PHONENUMBER_KEY: 'to', PASSWORD: 'rest-secret' },
  SmtpSMSProvider: { mailserver: 'smtp.example.com:587', mailto: '<phone>@sms.example.com', mailpassword: 'mail-secret' },
  SMPPSMSProvider: { server: 'smsc.example.com', system_id: 'otpd', password: 'smpp-secret', source_addr: 'otpd' },
  SMTPEmailProvider: { SMTP_SERVER: 'smtp.example.com', SMTP_PASSWORD: 'smtp-secret' },
};
const REQUIRED: Record<string, string[]> = {
  HttpSMSProvider: ['URL'],
  RestSMSProvider: ['URL', 'PAYLOAD', 'SMS_TEXT_KEY', 'SMS_PHONENUMBER_KEY'],
  SmtpSMSProvider: ['mailserver', 'mailto'],
  SMPPSMSProvider: ['server', 'system_id', 'password', 'source_addr'],
  DeviceSMSProvider: ['CONFIGFILE'],
  SMTPEmailProvider: ['SMTP_SERVER'],
};
const SECRETS: Record<string, string[]> = {
  HttpSMSProvider: ['PASSWORD'],
  RestSMSProvider: ['PASSWORD'],
  SmtpSMSProvider: ['mailpassword'],
  SMPPSMSProvider: ['password'],
  DeviceSMSProvider: [],
  SMTPEmailProvider: ['SMTP_PASSWORD'],
  'otpd.demo.CaptureSMS': [],
  'otpd.demo.CaptureEmail': [],
};
/** The demo's capture classes: no required key, built only with a capture sink (demo mode). */
const DEMO_ONLY = ['otpd.demo.CaptureSMS', 'otpd.demo.CaptureEmail'];

function problems(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigValidationError, `not a ConfigValidationError: ${String(e)}`);
    return e.problems;
  }
  assert.fail('did not throw');
}

describe('provider schemas', () => {
  test('every class is covered here', () => {
    assert.deepEqual(providerModules.map((m) => m.className).sort(), [...Object.keys(REQUIRED), ...DEMO_ONLY].sort());
    assert.deepEqual(providerModules.filter((m) => m.demoOnly).map((m) => m.className).sort(), [...DEMO_ONLY].sort());
  });

  test('HEADERS.Authorization next to USERNAME or URL credentials is refused (it would be overwritten on every request)', () => {
    const http = findProviderModule('HttpSMSProvider')!;
    const rest = findProviderModule('RestSMSProvider')!;
    const restBase = { PAYLOAD: { to: '<phone>', text: '' }, SMS_TEXT_KEY: 'text', SMS_PHONENUMBER_KEY: 'to' };
    assert.deepEqual(problems(() => http.create({ URL: 'https://sms.example.com/send', USERNAME: 'otpd', PASSWORD: 'x', HEADERS: { Authorization: 'Bearer t' } }, ctx)),
      ['config.HEADERS: Authorization and USERNAME both set the credentials; keep one']);
    assert.deepEqual(problems(() => http.create({ URL: 'https://u:p@sms.example.com/send', HEADERS: { authorization: 'Bearer t' } }, ctx)),
      ['config.HEADERS: Authorization and user:pw@ in the URL both set the credentials; keep one']);
    assert.deepEqual(problems(() => rest.create({ ...restBase, URL: 'https://sms.example.com/v1', USERNAME: 'otpd', HEADERS: { AUTHORIZATION: 'Bearer t' } }, ctx)),
      ['config.HEADERS: Authorization and USERNAME both set the credentials; keep one']);
    // either alone is fine
    http.create({ URL: 'https://sms.example.com/send', HEADERS: { Authorization: 'Bearer t' } }, ctx);
    rest.create({ ...restBase, URL: 'https://sms.example.com/v1', HEADERS: { Authorization: 'Bearer t' } }, ctx);
  });

  test('the capture classes build only with the demo capture sink, and keep what they are given', async () => {
    for (const className of DEMO_ONLY) {
      assert.deepEqual(problems(() => findProviderModule(className)!.create({}, ctx)), [`config: ${className} keeps messages for /demo/messages and exists only in demo mode (docs/demo.md)`]);
    }
    const kept: unknown[] = [];
    const demoCtx: ProviderContext = { ...ctx, capture: async (m) => void kept.push(m) };
    assert.deepEqual(problems(() => findProviderModule('otpd.demo.CaptureSMS')!.create({ URL: 'x' }, demoCtx)), ['config.URL: unknown key']);
    const sms = findProviderModule('otpd.demo.CaptureSMS')!.create({}, demoCtx);
    const email = findProviderModule('otpd.demo.CaptureEmail')!.create({ timeout: '5' }, demoCtx);
    const signal = new AbortController().signal;
    assert.deepEqual(await sms.send({ channel: 'sms', to: '+4915123456789', text: 'Code <otp>', otp: '123456' }, signal), { kind: 'accepted' });
    assert.deepEqual(await email.send({ channel: 'email', to: 'alice@example.org', text: 'Hello ${givenname}: <otp>', otp: '654321', userInfo: { givenname: 'Alice' } }, signal), { kind: 'accepted' });
    assert.deepEqual(kept, [
      { channel: 'sms', to: '+4915123456789', text: 'Code 123456' },
      { channel: 'email', to: 'alice@example.org', text: 'Hello Alice: 654321', subject: 'Your OTP' },
    ]);
  });

  test('a good config builds an instance', async () => {
    for (const [className, config] of Object.entries(GOOD)) {
      const provider = findProviderModule(className)!.create(config, ctx);
      assert.equal(typeof provider.send, 'function', className);
      await provider.close?.();
    }
  });

  test('each missing required key fails naming it, before anything is built', () => {
    for (const [className, keys] of Object.entries(REQUIRED)) {
      const module = findProviderModule(className)!;
      assert.deepEqual(problems(() => module.create({}, ctx)).sort(), keys.map((k) => `config.${k}: required`).sort(), className);
    }
  });

  test('a wrong type fails naming the key', () => {
    const http = findProviderModule('HttpSMSProvider')!;
    assert.deepEqual(problems(() => http.create({ ...GOOD.HttpSMSProvider, URL: 42 }, ctx)), ['config.URL: must be string']);
    assert.deepEqual(problems(() => http.create({ ...GOOD.HttpSMSProvider, HTTP_Method: 'PUT' }, ctx)), ['config.HTTP_Method: must be one of "GET", "POST", "get", "post"']);
    assert.deepEqual(problems(() => http.create({ ...GOOD.HttpSMSProvider, PROXY: 8080 }, ctx)), ['config.PROXY: must be string or object']);
    const smpp = findProviderModule('SMPPSMSProvider')!;
    assert.deepEqual(problems(() => smpp.create({ ...GOOD.SMPPSMSProvider, port: 'smpp' }, ctx)), ['config.port: must be number or string matching ^\\s*\\d+(\\.\\d+)?\\s*$']);
    const email = findProviderModule('SMTPEmailProvider')!;
    assert.deepEqual(problems(() => email.create({ ...GOOD.SMTPEmailProvider, SMTP_PASSWROD: 'typo' }, ctx)), ['config.SMTP_PASSWROD: unknown key']);
    assert.deepEqual(problems(() => email.create('{"SMTP_SERVER": "x"}', ctx)), ['config: must be object']);
  });

  test('secret keys come from the schema; every secret-looking key is marked', () => {
    for (const module of providerModules) {
      assert.deepEqual(module.secretKeys, SECRETS[module.className], module.className);
      const properties = Object.keys((module.schema as { properties?: object }).properties ?? {});
      for (const key of properties) {
        if (/pass|pw|secret|token|apikey/i.test(key)) assert.ok(module.secretKeys.includes(key), `${module.className}.${key} looks secret but is not marked`);
      }
    }
  });

  test('censoring follows the schema: marked fields, secret-named keys of free-form maps, URL passwords', () => {
    for (const [className, config] of Object.entries(GOOD)) {
      const module = findProviderModule(className)!;
      const shown = censorConfig(module, config);
      for (const key of SECRETS[className]!) assert.equal(shown[key], CENSORED, `${className}.${key}`);
      assert.ok(!JSON.stringify(shown).includes('secret'), `${className}: ${JSON.stringify(shown)}`);
    }
    const rest = findProviderModule('RestSMSProvider')!;
    assert.deepEqual(
      censorConfig(rest, {
        URL: 'https://otpd:url-pw@sms.example.com/v1',
        PAYLOAD: { auth: { api_key: 'k-1' }, to: '<phone>' },
        HEADERS: { Authorization: 'Bearer t-1', Accept: 'application/json' },
        SMS_TEXT_KEY: 'text',
        PASSWORD: '',
      }),
      {
        URL: `https://otpd:${CENSORED}@sms.example.com/v1`,
        PAYLOAD: { auth: { api_key: CENSORED }, to: '<phone>' },
        HEADERS: { Authorization: CENSORED, Accept: 'application/json' },
        SMS_TEXT_KEY: 'text',
        PASSWORD: '',
      },
    );
  });
});
