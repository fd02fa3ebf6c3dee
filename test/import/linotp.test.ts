// `otpd import linotp` against a LinOTP-format database on SQLite, PostgreSQL and MariaDB (built
// from the spec, test/import/linotp-fixture.ts): resolvers (secrets re-encrypted under otpd's
// key), realms and the default realm, policies (the refused ones listed with the reason; the
// imported ones answer in the simulator as spec 3.3 says LinOTP would), providers, system config
// (unknown and refused keys listed; policy_action_validation=False dropped with a note), tokens
// (every imported one validates with its next OTP and its LinOTP PIN, which is re-hashed into
// otpd's format on its first use). The dry run changes nothing, a second run is idempotent, and
// no output holds a secret.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerImportCommands } from '../../src/import/cli.ts';
import type { ImportServices } from '../../src/import/linotp/apply.ts';
import { LINOTP_PIN_MARKER } from '../../src/crypto/linotp.ts';
import { hotp, totpStep } from '../../src/otp/hotp.ts';
import { availableDialects } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { buildLinotpDatabase, type FixtureContent, type LinotpFixture } from './linotp-fixture.ts';

const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw]).toString().trim();
const PASSWD = 'useridresolver.PasswdIdResolver.IdResolver.myusers';
const LDAP = 'useridresolver.LDAPIdResolver.IdResolver.corpldap';
const BINDPW = `ldap-bind-${randomBytes(4).toString('hex')}`;
const SQLPW = `sql-pass-${randomBytes(4).toString('hex')}`;
const MAILPW = `mail-pass-${randomBytes(4).toString('hex')}`;
const seeds = { bob: randomBytes(20), alice: randomBytes(32), dave: randomBytes(20), sms: randomBytes(20), off: randomBytes(20), max: randomBytes(20), bad: randomBytes(20) };

function content(usersFile: string): FixtureContent {
  const cfg = (key: string, value: string, encrypt = false) => ({ key: encrypt ? `enclinotp.${key}` : `linotp.${key}`, value, encrypt });
  return {
    config: [
      cfg('passwdresolver.fileName.myusers', usersFile),
      cfg('ldapresolver.LDAPURI.corpldap', 'ldap://127.0.0.1:1'),
      cfg('ldapresolver.LDAPBASE.corpldap', 'ou=people,dc=example,dc=org'),
      cfg('ldapresolver.BINDDN.corpldap', 'cn=admin,dc=example,dc=org'),
      cfg('ldapresolver.BINDPW.corpldap', BINDPW, true),
      cfg('ldapresolver.LOGINNAMEATTRIBUTE.corpldap', 'uid'),
      cfg('ldapresolver.LDAPFILTER.corpldap', '(&(uid=%s)(objectClass=inetOrgPerson))'),
      cfg('ldapresolver.LDAPSEARCHFILTER.corpldap', '(uid=*)(objectClass=inetOrgPerson)'),
      cfg('ldapresolver.USERINFO.corpldap', '{"username":"uid","mobile":"mobile","email":"mail"}'),
      cfg('ldapresolver.UIDTYPE.corpldap', 'DN'),
      cfg('ldapresolver.EnforceTLS.corpldap', 'False'),
      cfg('sqlresolver.Driver.sqlusers', 'mysql'),
      cfg('sqlresolver.Server.sqlusers', '127.0.0.1'),
      cfg('sqlresolver.Port.sqlusers', '3306'),
      cfg('sqlresolver.Database.sqlusers', 'users'),
      cfg('sqlresolver.User.sqlusers', 'linotp'),
      cfg('sqlresolver.Password.sqlusers', SQLPW, true),
      cfg('sqlresolver.Table.sqlusers', 'users'),
      cfg('sqlresolver.Map.sqlusers', '{"userid":"id","username":"login","password":"pw"}'),
      cfg('httpresolver.URL.webusers', 'http://127.0.0.1:1/'),
      cfg('useridresolver.group.myrealm', PASSWD),
      cfg('useridresolver.group.corp', LDAP),
      cfg('useridresolver.group.web', 'useridresolver.HTTPIdResolver.IdResolver.webusers'),
      cfg('DefaultRealm', 'myrealm'),
      // policies (spec 1.5: linotp.Policy.<name>.<attr>)
      ...Object.entries({
        pin_all: { scope: 'authentication', action: 'otppin=token_pin', realm: '*', user: '*', client: '' },
        pin_dave: { scope: 'authentication', action: 'otppin=password', realm: 'myrealm', user: 'dave', client: '' },
        passthru_not_corp: { scope: 'authentication', action: 'passthru', realm: '*, !corp', user: '*', client: '' },
        maxtok_pattern: { scope: 'enrollment', action: 'maxtoken=2', realm: 'myrealm', user: 'b.*', client: '' },
        maxtok_all: { scope: 'enrollment', action: 'maxtoken=5', realm: 'myrealm', user: '*', client: '' },
        lost_pw: { scope: 'admin', action: 'checkstatus', realm: '*', user: '*', client: '' },
        bad_action: { scope: 'authentication', action: 'nosuchaction=1', realm: '*', user: '*', client: '' },
      }).flatMap(([name, p]) => Object.entries(p).map(([attr, v]) => cfg(`Policy.${name}.${attr}`, v))),
      // providers
      cfg('EmailProvider.mailer', 'linotp.provider.emailprovider.SMTPEmailProvider'),
      cfg('EmailProvider.mailer.Config', JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: 2525, EMAIL_FROM: 'otp@example.com', SMTP_USER: 'otp', SMTP_PASSWORD: MAILPW }), true),
      cfg('EmailProvider.mailer.Timeout', '10'),
      cfg('Provider.Default.email_provider', 'mailer'),
      cfg('PushProvider.pusher', 'DefaultPushProvider'),
      // system config
      cfg('DefaultMaxFailCount', '12'),
      cfg('PrependPin', 'True'),
      cfg('policy_action_validation', 'False'),
      cfg('AutoResync', 'True'),
      cfg('SomeUnknownKey', 'x'),
    ],
    realms: ['myrealm', 'corp'],
    tokens: [
      { id: 1, serial: 'HOTP-BOB', type: 'HMAC', seed: seeds.bob, pin: 'bob-pin-1', userid: '1002', resClass: PASSWD, realms: ['myrealm'], count: 5, failCount: 2, desc: 'bob key fob' },
      { id: 2, serial: 'TOTP-ALICE', type: 'totp', seed: seeds.alice, pin: 'älice-pin', userid: '1001', resClass: PASSWD, realms: ['myrealm'], otplen: 8, info: { hashlib: 'sha256', timeStep: '30', timeWindow: '180' } },
      { id: 3, serial: 'HOTP-DAVE', type: 'hmac', seed: seeds.dave, userid: '1004', resClass: PASSWD, realms: ['myrealm'] },
      { id: 4, serial: 'SPASS-CAROL', type: 'spass', pin: 'carol-spass-9', userid: '1003', resClass: PASSWD, realms: ['myrealm'] },
      { id: 5, serial: 'SMS-ERIN', type: 'sms', seed: seeds.sms, pin: 'erin-pin', userid: '1005', resClass: PASSWD, realms: ['myrealm'], info: { hashlib: 'sha1', phone: '+4915123456789', until: 'x' } },
      { id: 6, serial: 'OFF-1', type: 'hmac', seed: seeds.off, active: false, realms: ['myrealm'] },
      { id: 7, serial: 'MAXFAIL-1', type: 'hmac', seed: seeds.max, maxFail: 100000000 },
      { id: 8, serial: 'OCRA-1', type: 'ocra2', seed: randomBytes(20) },
      { id: 9, serial: 'MOTP-1', type: 'motp', seed: randomBytes(16) },
      { id: 10, serial: 'MOTP-2', type: 'motp', seed: randomBytes(16) },
      { id: 11, serial: 'ENCPIN-1', type: 'hmac', seed: seeds.bad, pinHashRaw: '@@0123abcd' },
      { id: 12, serial: 'PW-FRANK', type: 'pw', rawSecret: crypt('static-pass') },
    ],
  };
}

for (const { dialect, skip } of await availableDialects()) {
  describe(`otpd import linotp from ${dialect}`, { skip }, () => {
    let t: TestApp;
    let fx: LinotpFixture;
    let dir: string;
    const outputs: string[] = [];
    const run = async (...args: string[]) => {
      const program = new Command().exitOverride();
      let out = '';
      const errors: Error[] = [];
      const withServices = <T>(fn: (s: ImportServices) => Promise<T>) => fn(t.services);
      registerImportCommands(program, withServices, (text) => void (out += text), (e) => void errors.push(e));
      await program.parseAsync(['node', 'otpd', ...args]);
      outputs.push(out, ...errors.map((e) => e.message));
      if (errors.length) throw errors[0];
      return out;
    };
    const linotp = (...extra: string[]) => run('import', 'linotp', '--db', fx.url, '--enckey', fx.encKeyFile, ...extra);
    const check = async (user: string, pass: string) => (await t.post('/validate/check', { user, pass })).json.result.value;
    const state = async () => {
      const k = t.services.db.kysely;
      return JSON.stringify(await Promise.all(['tokens', 'token_realms', 'policies', 'resolvers', 'realms', 'config', 'delivery_providers'].map((table) => k.selectFrom(table as 'tokens').selectAll().execute())));
    };

    before(async () => {
      dir = testTmpDir('otpd-linotp-');
      const usersFile = join(dir, 'users');
      writeFileSync(usersFile, [
        `alice:${crypt('alice-pw')}:1001:1001:Alice Anders,,+4930111,+4930112,alice@example.com:/:/bin/sh`,
        `bob:${crypt('bob-pw')}:1002:1002:Bob B,,,,bob@example.com:/:/bin/sh`,
        `carol:${crypt('carol-pw')}:1003:1003:Carol C:/:/bin/sh`,
        `dave:${crypt('dave-pw')}:1004:1004:Dave D:/:/bin/sh`,
        `erin:${crypt('erin-pw')}:1005:1005:Erin E:/:/bin/sh`,
      ].join('\n'));
      fx = await buildLinotpDatabase(dialect, dir, content(usersFile));
      t = await startTestApp();
    });
    after(async () => {
      for (const o of outputs) for (const s of [...fx.secrets, BINDPW, SQLPW, MAILPW, fx.encKey.toString('hex')]) assert.ok(!o.includes(s), `output holds a secret: ${o}`);
      await t.close();
      await fx.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('the dry run lists what would be imported and changes nothing', async () => {
      const before = await state();
      const out = await linotp('--dry-run');
      assert.match(out, /^DRY RUN: nothing was changed/);
      assert.match(out, /resolvers would import: corpldap, myusers, sqlusers\n/);
      assert.match(out, /tokens that would be created: 7 /);
      assert.equal(await state(), before);
    });

    test('imports resolvers, realms, providers, policies, config and tokens; refusals listed with reasons', async () => {
      const out = await linotp();
      assert.match(out, /resolvers imported: corpldap, myusers, sqlusers\n/);
      assert.match(out, /realms imported: corp, myrealm \(default realm myrealm\)/);
      assert.match(out, /providers imported: email\/mailer \(default\)\n/);
      assert.match(out, /policies imported: maxtok_all, maxtok_pattern, passthru_not_corp, pin_all, pin_dave\n/);
      assert.match(out, /config keys imported: DefaultMaxFailCount, PrependPin\n/);
      assert.match(out, /tokens created: 7 \(HOTP-BOB, TOTP-ALICE, HOTP-DAVE, SPASS-CAROL, SMS-ERIN, OFF-1, MAXFAIL-1\)/);
      assert.match(out, /tokens skipped, type not supported by otpd: 3 \(ocra2: 1 \[OCRA-1\]; motp: 2 \[MOTP-1, MOTP-2\]\)/);
      for (const line of [
        /resolver webusers: resolver type httpresolver is not supported/,
        /realm web: its resolver webusers was not imported/,
        /policy lost_pw: .*checkstatus/,
        /policy bad_action: .*nosuchaction/,
        /provider pusher: Push providers: otpd has no push tokens/,
        /config AutoResync: otpd does not resynchronise automatically/,
        /config SomeUnknownKey: unknown to otpd's config catalogue/,
        /token ENCPIN-1: the PIN is not stored as the salted SHA-256 hash/,
        /token PW-FRANK: LinOTP keeps only a hash of this static password/,
        /policy_action_validation=False dropped/,
        /token MAXFAIL-1: max fail 100000000 is above otpd's limit 100: set to 100/,
        /token SMS-ERIN: token info until not carried over/,
      ]) assert.match(out, line);

      // secrets re-encrypted under otpd's key: the stored config holds no clear password, the resolver works with it
      const rows = JSON.stringify(await t.services.db.kysely.selectFrom('resolvers').selectAll().execute());
      assert.ok(!rows.includes(BINDPW) && !rows.includes(SQLPW));
      const ldap = await t.admin('/system/getResolver', { resolver: 'corpldap' });
      assert.equal(ldap.json.result.value.data.BINDPW, '__CENSORED__');
      const provider = await t.services.db.kysely.selectFrom('delivery_providers').selectAll().where('name', '=', 'mailer').executeTakeFirstOrThrow();
      assert.equal(JSON.parse(t.services.keyring.decryptString('config', provider.config_enc)).SMTP_PASSWORD, MAILPW);
      assert.equal(t.services.config.number('DefaultMaxFailCount'), 12);
      assert.equal(t.services.config.string('DefaultRealm'), 'myrealm');

      const bob = (await t.services.tokens.repository.bySerial('HOTP-BOB'))!;
      assert.deepEqual({ counter: bob.counter, failCount: bob.failCount, realms: bob.realms, resolver: bob.resolver, userId: bob.userId, description: bob.description, active: bob.active },
        { counter: 5, failCount: 2, realms: ['myrealm'], resolver: 'myusers', userId: '1002', description: 'bob key fob', active: true });
      assert.ok(bob.pinSalt.startsWith(LINOTP_PIN_MARKER), 'the PIN stays in LinOTP\'s format until it is used');
      const sms = (await t.services.tokens.repository.bySerial('SMS-ERIN'))!;
      assert.deepEqual(sms.info, { hashlib: 'sha1', phone: '+4915123456789' });
      assert.equal((await t.services.tokens.repository.bySerial('MAXFAIL-1'))!.maxFail, 100);
    });

    test('every imported token validates with its next OTP and its LinOTP PIN; the PIN is then re-hashed', async () => {
      assert.equal(await check('bob', `bob-pin-1${hotp(seeds.bob, 4)}`), false, 'an OTP below the imported counter is used up');
      assert.equal(await check('bob', `wrong-pin${hotp(seeds.bob, 5)}`), false);
      assert.equal(await check('bob', `bob-pin-1${hotp(seeds.bob, 6)}`), true);
      const bob = (await t.services.tokens.repository.bySerial('HOTP-BOB'))!;
      assert.ok(!bob.pinSalt.startsWith(LINOTP_PIN_MARKER), 're-hashed into otpd\'s keyed hash');
      assert.equal(await check('bob', `bob-pin-1${hotp(seeds.bob, 7)}`), true, 'the re-hashed PIN still matches');
      assert.equal(await check('bob', `bob-pin-X${hotp(seeds.bob, 8)}`), false);
      const step = totpStep(Date.now(), 30, 0);
      assert.equal(await check('alice', `älice-pin${hotp(seeds.alice, step, 8, 'sha256')}`), true);
      // pin_dave (otppin=password) wins over pin_all for dave: the store password is the PIN
      assert.equal(await check('dave', `dave-pw${hotp(seeds.dave, 0)}`), true);
      assert.equal(await check('carol', 'carol-spass-9'), true);
      assert.equal(await check('carol', 'carol-spass-8'), false);
      assert.equal(await t.post('/validate/check', { serial: 'OFF-1', pass: hotp(seeds.off, 0) }).then((r) => r.json.result.value), false, 'an inactive token stays inactive');
    });

    test('imported policies answer as spec 3.3 says LinOTP would', async () => {
      const p = t.services.policies;
      const value = (scope: 'authentication' | 'enrollment', action: string, login: string, realm: string) => p.value(scope, action, { login, realm, resolver: 'myusers' });
      assert.equal(value('authentication', 'otppin', 'alice', 'myrealm'), 'token_pin');
      assert.equal(value('authentication', 'otppin', 'dave', 'myrealm'), 'password', 'an exact user beats *');
      assert.equal(value('authentication', 'otppin', 'dave', 'corp'), 'token_pin', 'pin_dave is for realm myrealm only');
      assert.equal(p.has('authentication', 'passthru', { login: 'alice', realm: 'myrealm' }), true);
      assert.equal(p.has('authentication', 'passthru', { login: 'alice', realm: 'corp' }), false, '!corp excludes the realm');
      assert.equal(value('enrollment', 'maxtoken', 'bob', 'myrealm'), 2, 'a user pattern beats *');
      assert.equal(value('enrollment', 'maxtoken', 'alice', 'myrealm'), 5);
      const sim = await t.admin('/system/checkPolicy', { user: 'dave', realm: 'myrealm', scope: 'authentication', action: 'otppin', client: '127.0.0.1' });
      assert.equal(sim.json.result.status, true, sim.body);
      assert.match(sim.body, /pin_dave/);
    });

    test('a second run changes nothing; a counter LinOTP moved on is taken forward only', async () => {
      const before = await state();
      const out = await linotp();
      assert.match(out, /tokens created: 0/);
      assert.match(out, /tokens already in otpd, kept: 7\n/);
      assert.equal(await state(), before);
      // otpd's counter behind LinOTP's (LinOTP went on counting during a side-by-side run): taken forward, never back
      const bob = (await t.services.tokens.repository.bySerial('HOTP-BOB'))!;
      await t.services.tokens.repository.update(bob.id, { counter: 3 });
      const third = await linotp();
      assert.match(third, /tokens already in otpd, kept: 6; counter moved forward to LinOTP's: HOTP-BOB/);
      assert.equal((await t.services.tokens.repository.bySerial('HOTP-BOB'))!.counter, 5);
      assert.equal((await t.services.tokens.repository.bySerial('HOTP-DAVE'))!.counter, 1, 'a counter ahead of LinOTP\'s stays');
    });
  });
}
