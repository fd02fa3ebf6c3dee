import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CENSORED, censorConfig, findProviderModule, refuseClass, restoreCensored } from '../../src/delivery/registry.ts';
import { maskDestination, phonePrefix } from '../../src/util/phone.ts';

test('LinOTP class identifiers resolve to the same module (spec 6.1)', () => {
  const forms: [string, string][] = [
    ['HttpSMSProvider', 'HttpSMSProvider'],
    ['linotp.provider.smsprovider.HttpSMSProvider', 'HttpSMSProvider'],
    ['smsprovider.HttpSMSProvider.HttpSMSProvider', 'HttpSMSProvider'],
    ['smsprovider.HttpSMSProvider', 'HttpSMSProvider'],
    ['smsprovider.SmtpSMSProvider.SmtpSMSProvider', 'SmtpSMSProvider'],
    ['linotp.provider.smsprovider.SMPPSMSProvider', 'SMPPSMSProvider'],
    ['smsprovider.DeviceSMSProvider', 'DeviceSMSProvider'],
    ['RestSMSProvider', 'RestSMSProvider'],
    ['SMTPEmailProvider', 'SMTPEmailProvider'],
    ['linotp.provider.emailprovider.SMTPEmailProvider', 'SMTPEmailProvider'],
    ['linotp.lib.emailprovider.SMTPEmailProvider', 'SMTPEmailProvider'],
  ];
  for (const [name, cls] of forms) assert.equal(findProviderModule(name)?.className, cls, name);
  assert.equal(refuseClass('HttpSMSProvider', 'email'), "provider class 'HttpSMSProvider' is of type sms, not email");
  assert.equal(refuseClass('smsprovider.FileSMSProvider'), 'FileSMSProvider writes one-time codes to a file in clear and is not offered by otpd');
  assert.equal(refuseClass('NoSuchProvider'), "unknown provider class 'NoSuchProvider'");
  assert.equal(refuseClass('SMTPEmailProvider', 'email'), null);
});

test('secrets are censored and the placeholder keeps the stored value', () => {
  const m = findProviderModule('HttpSMSProvider')!;
  assert.deepEqual(censorConfig(m, { URL: 'u', PASSWORD: 'pw', USERNAME: 'x' }), { URL: 'u', PASSWORD: CENSORED, USERNAME: 'x' });
  assert.deepEqual(restoreCensored(m, { URL: 'v', PASSWORD: CENSORED }, { URL: 'u', PASSWORD: 'pw' }), { URL: 'v', PASSWORD: 'pw' });
  assert.deepEqual(restoreCensored(m, { URL: 'v', PASSWORD: 'new' }, { PASSWORD: 'pw' }), { URL: 'v', PASSWORD: 'new' });
  assert.deepEqual(restoreCensored(m, { PASSWORD: CENSORED }, undefined), {});
});

test('masking and prefixes', () => {
  assert.equal(maskDestination('sms', '+4915112345678'), '+4915*******78');
  assert.equal(maskDestination('sms', '12345'), '*****');
  assert.equal(maskDestination('email', 'alice@example.org'), 'a***@example.org');
  assert.equal(phonePrefix('+4915112345678'), '+491511234');
});
