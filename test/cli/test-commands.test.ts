/**
 * `otpd resolver test NAME [--user LOGIN]` against a real slapd and `otpd provider test NAME --to …`
 * against a real SMTP server on loopback: the same test paths as /system/testResolver and
 * /system/testProvider, plain output, exit code 0 on success and 1 otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerProviderCommands } from '../../src/delivery/cli.ts';
import { registerResolverCommands } from '../../src/users/cli.ts';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, FIXTURE_USERS, SLAPD_BIN, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';

const SMTP_PASSWORD = 'smtp-Secret-91';

describe('resolver test and provider test commands', { skip: haveBinary(SLAPD_BIN, 'slapd') }, () => {
  let t: TestApp;
  let ldap: Slapd;
  let smtp: SmtpSink;

  /** Runs one command line; what it printed and its exit code. */
  async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
    const io = { out: '', err: '', code: 0 };
    const program = new Command().exitOverride();
    const open = async () => ({ ...t.services, close: async () => undefined });
    const output = { out: (s: string) => void (io.out += s), err: (s: string) => void (io.err += s), failed: (c: number) => void (io.code = c) };
    registerResolverCommands(program, open, output);
    registerProviderCommands(program, open, output);
    await program.parseAsync(args, { from: 'user' });
    return io;
  }

  before(async () => {
    [t, ldap, smtp] = await Promise.all([startTestApp(), startSlapd(), new SmtpSink({ auth: { user: 'otp', password: SMTP_PASSWORD } }).start()]);
    const ldapForm = { type: 'ldapresolver', PRESET: 'openldap', LDAPURI: ldap.url, LDAPBASE: FIXTURE_BASE, BINDDN: FIXTURE_ADMIN_DN, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '2' };
    for (const [path, form] of [
      ['/system/setResolver', { name: 'corpldap', ...ldapForm, BINDPW: FIXTURE_ADMIN_PW }],
      ['/system/setResolver', { name: 'wrongbind', ...ldapForm, BINDPW: 'not-the-password' }],
      ['/system/setProvider', { type: 'email', name: 'mail', class: 'SMTPEmailProvider', timeout: '5', config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: smtp.port, SMTP_USER: 'otp', SMTP_PASSWORD, EMAIL_FROM: 'otp@example.org' }) }],
      ['/system/setProvider', { type: 'email', name: 'badauth', class: 'SMTPEmailProvider', timeout: '5', config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: smtp.port, SMTP_USER: 'otp', SMTP_PASSWORD: 'wrong', EMAIL_FROM: 'otp@example.org' }) }],
    ] as const) {
      const res = await t.admin(path, form);
      assert.equal(res.json?.result?.value, true, `${path}: ${res.body}`);
    }
  });

  after(async () => {
    await t?.close();
    await ldap?.dispose();
    await smtp?.stop();
  });

  test('resolver test: connects, binds, counts, shows a sample; --user looks the login up', async () => {
    const ok = await run('resolver', 'test', 'corpldap', '--user', 'alice');
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, /^resolver corpldap: ok$/m);
    assert.match(ok.out, new RegExp(`^  users: ${FIXTURE_USERS.length}$`, 'm'));
    assert.match(ok.out, /^  user alice: found: .*email=alice@example\.org/m);
    assert.ok(!ok.out.includes(FIXTURE_ADMIN_PW), 'no bind password in the output');

    const missing = await run('resolver', 'test', 'corpldap', '--user', 'nobody-here');
    assert.equal(missing.code, 1);
    assert.match(missing.out, /^  user nobody-here: not found$/m);

    const json = await run('resolver', 'test', 'corpldap', '--json');
    assert.equal(json.code, 0);
    assert.equal(JSON.parse(json.out).userCount, FIXTURE_USERS.length);
  });

  test('resolver test: a failing bind and an unknown resolver exit 1 with the reason', async () => {
    const bad = await run('resolver', 'test', 'wrongbind');
    assert.equal(bad.code, 1);
    assert.match(bad.out, /^resolver wrongbind: FAILED$/m);
    assert.match(bad.out, /error: .*service bind failed/);
    const unknown = await run('resolver', 'test', 'nosuch');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.err, "otpd: ERR2354: no resolver named 'nosuch'\n");
  });

  test('provider test: the message reaches the SMTP server; refused credentials and bad input exit 1', async () => {
    const ok = await run('provider', 'test', 'mail', '--to', 'alice@example.org', '--text', 'hello from the CLI');
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, /^email provider mail: accepted/);
    const [mail] = await smtp.waitFor(1);
    assert.deepEqual(mail!.to, ['alice@example.org']);
    assert.equal(mail!.user, 'otp');
    assert.match(mail!.raw, /hello from the CLI/);
    assert.ok(!ok.out.includes(SMTP_PASSWORD));

    const refused = await run('provider', 'test', 'badauth', '--to', 'alice@example.org');
    assert.equal(refused.code, 1);
    assert.match(refused.out, /^email provider badauth: FAILED: /);
    assert.equal(smtp.mails.length, 1, 'nothing delivered');

    const badTo = await run('provider', 'test', 'mail', '--to', 'not an address');
    assert.equal(badTo.code, 1);
    assert.match(badTo.err, /^otpd: ERR2503: /);
    const unknown = await run('provider', 'test', 'nosuch', '--to', 'alice@example.org');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.err, "otpd: ERR2007: Unknown provider! 'nosuch'\n");
    // the test sends are in the delivery log, as the API's
    const log = await t.services.delivery.deliveryLog({});
    assert.ok(log.total >= 2, JSON.stringify(log));
  });
});
