/**
 * Invariants of configuration as code (`otpd config apply` / `export`, docs/config-as-code.md):
 * - export → apply on a fresh instance → export gives the same file; applying twice changes
 *   nothing the second time;
 * - a secret is never printed (diff, export, stdout, stderr, logs): the export holds only
 *   references, the diff only `(secret)`;
 * - a refused file changes nothing, and a refusal is the API's catalogue error naming the object.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerConfigCommands } from '../../src/declared/cli.ts';
import { applyDeclaredFile } from '../../src/declared/apply.ts';
import { exportState } from '../../src/declared/export.ts';
import { formatDeclaredFile } from '../../src/declared/file.ts';
import { PlanRefused } from '../../src/declared/plan.ts';
import { OtpdError } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

const BIN = join(import.meta.dirname, '../../bin/otpd.mjs');
const SECRETS = {
  bind: 'ldap-bind-Secret-81',
  sms: 'sms-gw-Secret-82',
  radius: 'radius-Secret-83',
  smtp: 'smtp-Secret-84',
};
/** The references the export writes, with the values instance A was given through the API. */
const REF_ENV = {
  OTPD_SECRET_RESOLVER_CORPLDAP_BINDPW: SECRETS.bind,
  OTPD_SECRET_PROVIDER_SMS_GATEWAY_PASSWORD: SECRETS.sms,
  OTPD_SECRET_PROVIDER_EMAIL_MAIL_SMTP_PASSWORD: SECRETS.smtp,
  OTPD_SECRET_RADIUS_VPN: SECRETS.radius,
};

function assertNoSecret(text: string, where: string): void {
  for (const s of Object.values(SECRETS)) assert.ok(!text.includes(s), `${where} holds a secret value`);
}

async function exportText(t: TestApp): Promise<string> {
  return formatDeclaredFile((await exportState(t.services)).file, 'yaml');
}

describe('config apply / export', () => {
  let a: TestApp;
  let b: TestApp;
  let dir: string;

  before(async () => {
    dir = testTmpDir('otpd-confcode-');
    a = await startTestApp();
    b = await startTestApp();
    // instance A is configured through the API, as an administrator would
    for (const [path, form] of [
      ['/system/setConfig', { UserCacheTTL: '60', DeliveryDefaultCountry: 'DE' }],
      ['/system/setResolver', {
        name: 'corpldap', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: 'ldap://127.0.0.1:18899', LDAPBASE: 'ou=people,dc=example,dc=org',
        BINDDN: 'cn=admin,dc=example,dc=org', BINDPW: SECRETS.bind, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '2',
      }],
      ['/system/setRealm', { realm: 'corp', resolvers: 'corpldap' }],
      ['/system/setDefaultRealm', { realm: 'corp' }],
      ['/system/setProvider', { type: 'sms', name: 'gateway', class: 'HttpSMSProvider', timeout: '5', config: JSON.stringify({ URL: 'http://127.0.0.1:18898/send', USERNAME: 'otpd', PASSWORD: SECRETS.sms, PARAMETER: { to: '<phone>', text: '<message>' } }) }],
      ['/system/setProvider', { type: 'email', name: 'mail', class: 'SMTPEmailProvider', timeout: '5', config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: 18897, EMAIL_FROM: 'otp@example.org', SMTP_USER: 'otp', SMTP_PASSWORD: SECRETS.smtp }) }],
      ['/system/setPolicy', { name: 'autoenroll', scope: 'enrollment', action: 'autoenrollment=sms email', realm: 'corp', user: '*' }],
      ['/system/setPolicy', { name: 'pin', scope: 'authentication', action: 'otppin=1, sms_provider=gateway', realm: 'corp', user: '*', active: 'False' }],
      ['/system/setRadiusClient', { name: 'vpn', address: '10.0.0.0/8', secret: SECRETS.radius, realm: 'corp' }],
    ] as const) {
      const res = await a.admin(path, form);
      assert.equal(res.json?.result?.status, true, `${path}: ${res.body}`);
      assert.notEqual(res.json.result.value, false, `${path}: ${res.body}`);
    }
  });

  after(async () => {
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('export → apply on a fresh instance → the same export; the second apply changes nothing', async () => {
    const exported = await exportText(a);
    assertNoSecret(exported, 'the export');
    for (const name of Object.keys(REF_ENV)) assert.ok(exported.includes(`env: ${name}`), `the export refers to ${name}`);
    const file = join(dir, 'exported.yaml');
    writeFileSync(file, exported);

    const first = await applyDeclaredFile(file, b.services, { env: REF_ENV });
    assertNoSecret(first.diff, 'the diff');
    assert.match(first.diff, /\+ resolver corpldap/);
    assert.match(first.diff, /BINDPW: \(secret\)/);
    assert.match(first.diff, /config\.PASSWORD: \(secret\)/);
    assert.equal(await exportText(b), exported);

    const second = await applyDeclaredFile(file, b.services, { env: REF_ENV });
    assert.deepEqual(second.plan.changes, []);
    assert.match(second.diff, /^no changes$/m);

    // the references brought the values themselves
    assert.equal(b.services.users.storedResolver('corpldap')?.config.BINDPW, SECRETS.bind);
    assert.equal((await b.services.radiusClients.stored()).find((c) => c.name === 'vpn')?.secret, SECRETS.radius);
    const sms = (await b.services.delivery.storedProviders()).find((p) => p.name === 'gateway');
    assert.equal(sms?.config?.PASSWORD, SECRETS.sms);
    assert.equal(b.services.users.defaultRealm(), 'corp');
    assert.deepEqual(b.services.policies.list({ includeInactive: true }).map((p) => [p.name, p.active]), [['autoenroll', true], ['pin', false]]);
  });

  test('a changed secret is shown as changed, never by value; JSON files work as YAML ones', async () => {
    const file = join(dir, 'radius.json');
    writeFileSync(file, JSON.stringify({ radius_clients: { vpn: { address: '10.0.0.0/8', secret: { env: 'NEW_SECRET' }, realm: 'corp' } } }));
    const res = await applyDeclaredFile(file, b.services, { env: { NEW_SECRET: 'rotated-Secret-85' } });
    assert.equal(res.diff, '~ RADIUS client vpn\n    secret: changed (secret)\n1 change(s): 0 added, 1 changed, 0 removed\n');
    assert.equal((await b.services.radiusClients.stored())[0]?.secret, 'rotated-Secret-85');
    // a file reference: the file's text without its trailing newline
    writeFileSync(join(dir, 'vpn.secret'), `${SECRETS.radius}\n`);
    writeFileSync(file, JSON.stringify({ radius_clients: { vpn: { address: '10.0.0.0/8', secret: { file: 'vpn.secret' }, realm: 'corp' } } }));
    await applyDeclaredFile(file, b.services, { env: {} });
    assert.equal((await b.services.radiusClients.stored())[0]?.secret, SECRETS.radius);
  });

  test('a refused file changes nothing: every object is checked first, refusals are the API\'s codes', async () => {
    const before = await exportText(b);
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, [
      'resolvers:',
      '  localfile:',
      '    type: passwdresolver',
      '    config: { fileName: /etc/passwd }',
      'realms:',
      '  other: { resolvers: [localfile] }',
      'policies:',
      '  broken: { scope: authentication, action: "nosuchaction=1", realm: "*" }',
      'radius_clients:',
      '  clash: { address: 10.0.0.0/8, secret: { env: X } }',
    ].join('\n'));
    await assert.rejects(applyDeclaredFile(file, b.services, { env: { X: 'x-secret' } }), (e: unknown) => {
      assert.ok(e instanceof PlanRefused, String(e));
      assert.deepEqual(e.problems.map((p) => [p.path, p.error.code]), [['policies', 2012], ['radius_clients.clash', 2010]]);
      assert.match(e.message, /already used by client vpn/);
      return true;
    });
    assert.equal(await exportText(b), before, 'nothing written');
    assert.equal(b.services.users.storedResolver('localfile'), undefined);

    // file problems: first the file's shape (an unknown key, a missing field), all at once
    writeFileSync(file, 'provders: {}\nrealms:\n  x: { default: true }\n');
    await assert.rejects(applyDeclaredFile(file, b.services, { env: {} }), (e: unknown) => {
      assert.ok(e instanceof OtpdError);
      assert.equal(e.code, 2707);
      assert.match(e.message, /provders: unknown key; realms\.x\.resolvers: required/);
      return true;
    });
    // then a secret written as a value and a reference that cannot be read
    writeFileSync(file, [
      'resolvers:',
      '  localfile2: { type: ldapresolver, config: { LDAPURI: "ldap://127.0.0.1:18899", BINDPW: plain-text } }',
      'radius_clients:',
      '  vpn2: { address: 192.0.2.1, secret: { env: NOT_SET_ANYWHERE } }',
    ].join('\n'));
    await assert.rejects(applyDeclaredFile(file, b.services, { env: {} }), (e: unknown) => {
      assert.ok(e instanceof OtpdError);
      assert.equal(e.code, 2707);
      assert.match(e.message, /resolvers\.localfile2\.config\.BINDPW: a secret: give it as a reference/);
      assert.match(e.message, /radius_clients\.vpn2\.secret: environment variable NOT_SET_ANYWHERE is not set/);
      assert.ok(!e.message.includes('plain-text'), 'the refusal does not repeat the value');
      return true;
    });
    assert.equal(await exportText(b), before, 'nothing written');
  });

  test('--prune removes what a section does not name, and refuses a resolver a realm still lists', async () => {
    const file = join(dir, 'prune.yaml');
    writeFileSync(file, 'resolvers:\n  localfile: { type: passwdresolver, config: { fileName: /etc/passwd } }\n');
    await assert.rejects(applyDeclaredFile(file, b.services, { prune: true }), (e: unknown) => {
      assert.ok(e instanceof PlanRefused);
      assert.equal(e.problems[0]?.error.code, 2005); // resolverInUse, as /system/delResolver
      return true;
    });
    assert.equal(b.services.users.storedResolver('localfile'), undefined, 'nothing written');
    // without --prune the other objects are kept and said so
    const kept = await applyDeclaredFile(file, b.services, { dryRun: true });
    assert.match(kept.diff, /not in the file, kept \(--prune removes them\): resolver corpldap/);
    // policies: pruning removes the ones the section does not name
    writeFileSync(file, 'policies:\n  autoenroll: { scope: enrollment, action: "autoenrollment=sms email", realm: corp, user: "*" }\n');
    const pruned = await applyDeclaredFile(file, b.services, { prune: true });
    assert.match(pruned.diff, /^- policy pin$/m);
    assert.deepEqual(b.services.policies.list({ includeInactive: true }).map((p) => p.name), ['autoenroll']);
  });

  test('the CLI prints the diff and the refusal; exit code 1 and "nothing was changed" on a refusal', async () => {
    const out: string[] = [];
    const err: string[] = [];
    let code = 0;
    const program = new Command().exitOverride();
    registerConfigCommands(program, async () => ({ ...b.services, close: async () => undefined }), {
      out: (s) => void out.push(s), err: (s) => void err.push(s), failed: (c) => void (code = c),
    });
    const file = join(dir, 'cli.yaml');
    writeFileSync(file, 'config:\n  AutoResyncTimeout: 5\n');
    await program.parseAsync(['config', 'apply', file], { from: 'user' });
    assert.equal(code, 1);
    assert.match(err.join(''), /^otpd: config\.AutoResyncTimeout: ERR2702: Config key 'AutoResyncTimeout' is refused/);
    assert.match(err.join(''), /nothing was changed/);
  });
});

describe('config apply in a child process and at serve start (OTPD_APPLY_FILE)', () => {
  test('secrets never reach stdout, stderr or the log; an invalid file stops the start with the reason', async () => {
    const dir = testTmpDir('otpd-confcode-cli-');
    try {
      mkdirSync(join(dir, 'data'));
      const file = join(dir, 'otpd-config.yaml');
      writeFileSync(file, [
        'resolvers:',
        '  corpldap: { type: ldapresolver, config: { PRESET: openldap, LDAPURI: "ldap://127.0.0.1:18899", LDAPBASE: "dc=example,dc=org", BINDDN: "cn=admin,dc=example,dc=org", BINDPW: { env: BIND_PW } } }',
        'radius_clients:',
        '  vpn: { address: 10.0.0.0/8, secret: { file: vpn.secret } }',
      ].join('\n'));
      writeFileSync(join(dir, 'vpn.secret'), SECRETS.radius);
      const env = { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_LOG_LEVEL: 'trace', OTPD_LOG_FORMAT: 'json', BIND_PW: SECRETS.bind };
      const dry = spawnSync(process.execPath, [BIN, 'config', 'apply', '--dry-run', file], { cwd: dir, env, encoding: 'utf8' });
      assert.equal(dry.status, 0, dry.stderr);
      assert.match(dry.stdout, /BINDPW: \(secret\)/);
      assertNoSecret(dry.stdout + dry.stderr, 'config apply output');

      // serve applies the file before listening; the log names the changes, never a secret
      const port = 18800 + Math.floor(Math.random() * 90);
      const child = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, env: { ...env, OTPD_PORT: String(port), OTPD_APPLY_FILE: file } });
      let log = '';
      child.stdout.on('data', (d) => (log += d));
      child.stderr.on('data', (d) => (log += d));
      try {
        await waitFor(() => log.includes('otpd listening'), { what: 'the server to listen', timeoutMs: 20_000, intervalMs: 50 }).catch((e: Error) => {
          throw new Error(`${e.message}; its output:\n${log}`);
        });
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      assert.match(log, /config file applied: 2 change\(s\)/);
      assert.ok(log.indexOf('config file applied') < log.indexOf('otpd listening'), 'applied before listening');
      assertNoSecret(log, 'the server log');
      const exported = spawnSync(process.execPath, [BIN, 'config', 'export'], { cwd: dir, env, encoding: 'utf8' });
      assert.equal(exported.status, 0, exported.stderr);
      assert.match(exported.stdout, /env: OTPD_SECRET_RADIUS_VPN/);
      assertNoSecret(exported.stdout + exported.stderr, 'config export output');

      // an invalid file: serve refuses to start, with the reason, and does not listen
      writeFileSync(file, 'policies:\n  broken: { scope: authentication, action: "nosuchaction=1", realm: "*" }\n');
      const refused = spawnSync(process.execPath, [BIN, 'serve'], { cwd: dir, env: { ...env, OTPD_PORT: String(port), OTPD_APPLY_FILE: file }, encoding: 'utf8', timeout: 30_000 });
      assert.equal(refused.status, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /otpd: policies: ERR2012: .*nosuchaction/);
      assert.ok(!refused.stdout.includes('otpd listening'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
