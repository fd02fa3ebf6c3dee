/**
 * UserDirectory: resolvers and realms persisted per dialect, secrets sealed at
 * rest and censored on the way out, user@realm parsing (spec 1.1), realm order
 * and fail-closed lookups, the user cache (TTL with a fake clock, flush,
 * cross-node invalidation through the `users` revision).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ConfigService } from '../../src/config/service.ts';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { Errors, OtpdError, UserStoreUnavailableError } from '../../src/errors.ts';
import { RevisionWatcher } from '../../src/store/revisions.ts';
import { UserDirectory } from '../../src/users/directory.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { availableDialects, createTestDb, type TestDb } from '../helpers/db.ts';
import { haveBinary } from '../helpers/require.ts';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, freePort, SLAPD_BIN, startSlapd, type Slapd } from '../fixtures/slapd.ts';

const logger = pino({ level: 'silent' });
const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw]).toString().trim();
const PASSWD_CLASS = 'useridresolver.PasswdIdResolver.IdResolver';

function passwdFile(dir: string, name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function makeDirectory(tdb: TestDb, keyring: KeyRing, clock: FakeClock) {
  const config = new ConfigService(tdb.db, keyring);
  await config.load();
  const dir = new UserDirectory({ db: tdb.db, keyring, config, logger, clock });
  await dir.load();
  return { dir, config };
}

for (const { dialect, skip } of await availableDialects()) {
  describe(`UserDirectory on ${dialect}`, { skip }, () => {
    let tdb: TestDb;
    let tmp: string;
    let users1: string;
    let users2: string;
    const keyring = KeyRing.fromBytes();
    const clock = new FakeClock();
    let dir: UserDirectory;
    let config: ConfigService;

    before(async () => {
      tdb = await createTestDb(dialect);
      tmp = mkdtempSync(join(tmpdir(), 'otpd-dir-'));
      users1 = passwdFile(tmp, 'users1', [
        `alice:${crypt('alicepw')}:1000:1000:Alice Able,,+49 1,+49 2,alice@example.org:/:/bin/sh`,
        `bob@corp:${crypt('bobpw')}:1001:1001:Bob Mail:/:/bin/sh`,
        `shared:${crypt('first')}:1002:1002:Shared One:/:/bin/sh`,
      ]);
      users2 = passwdFile(tmp, 'users2', [
        `carol:${crypt('carolpw')}:2000:2000:Carol Cole:/:/bin/sh`,
        `shared:${crypt('second')}:2002:2002:Shared Two:/:/bin/sh`,
      ]);
      ({ dir, config } = await makeDirectory(tdb, keyring, clock));
      await dir.setResolver('files1', 'passwdresolver', { fileName: users1 });
      await dir.setResolver('files2', 'passwdresolver', { fileName: users2 });
      await dir.setRealm('MyRealm', [`${PASSWD_CLASS}.files1`, 'files2']);
      await dir.setRealm('corp', [`${PASSWD_CLASS}.files2`]);
    });
    after(async () => {
      await dir?.close();
      await tdb?.drop();
      rmSync(tmp, { recursive: true, force: true });
    });

    test('realms: lower-case names, order, getRealms shape, default realm', async () => {
      assert.deepEqual(dir.realmNames(), ['corp', 'myrealm']);
      assert.equal(await dir.setDefaultRealm('nosuchrealm'), false);
      assert.equal(await dir.setDefaultRealm('MYREALM'), true);
      assert.equal(dir.defaultRealm(), 'myrealm');
      assert.equal(config.get('DefaultRealm'), 'myrealm');
      assert.deepEqual(dir.describeRealms(), {
        corp: { realmname: 'corp', entry: 'linotp.useridresolver.group.corp', useridresolver: [`${PASSWD_CLASS}.files2`], admin: false },
        myrealm: {
          realmname: 'myrealm', entry: 'linotp.useridresolver.group.myrealm',
          useridresolver: [`${PASSWD_CLASS}.files1`, `${PASSWD_CLASS}.files2`], default: 'true', admin: false,
        },
      });
      assert.deepEqual(dir.realmsOfResolver('files2'), ['corp', 'myrealm']);
      assert.deepEqual(dir.realmsOfResolver('files1'), ['myrealm']);
      const rows = await tdb.db.kysely.selectFrom('realms').selectAll().orderBy('name').execute();
      assert.deepEqual(rows.map((r) => [r.name, JSON.parse(r.resolvers)]), [['corp', ['files2']], ['myrealm', ['files1', 'files2']]]);
    });

    test('splitUser: realm parameter wins, last @ with a known realm, DOMAIN\\user, default realm', () => {
      assert.deepEqual(dir.splitUser('alice@corp', 'MyRealm'), { login: 'alice@corp', realm: 'myrealm' });
      assert.deepEqual(dir.splitUser('alice@corp'), { login: 'alice', realm: 'corp' });
      assert.deepEqual(dir.splitUser('bob@corp@CORP'), { login: 'bob@corp', realm: 'corp' });
      assert.deepEqual(dir.splitUser('alice@example.org'), { login: 'alice@example.org', realm: 'myrealm' });
      assert.deepEqual(dir.splitUser('CORP\\carol'), { login: 'carol', realm: 'corp' });
      assert.deepEqual(dir.splitUser('OTHER\\carol'), { login: 'carol', realm: 'myrealm' });
      assert.deepEqual(dir.splitUser('alice'), { login: 'alice', realm: 'myrealm' });
    });

    test('splitAtSign=false keeps the @ in the login', async () => {
      await config.set('splitAtSign', 'false');
      try {
        assert.deepEqual(dir.splitUser('alice@corp'), { login: 'alice@corp', realm: 'myrealm' });
      } finally {
        await config.set('splitAtSign', 'true');
      }
    });

    test('findUser: first resolver wins, retry of the @ split, class names', async () => {
      const shared = await dir.findUser('shared', 'myrealm');
      assert.equal(shared?.resolver, 'files1');
      assert.equal(shared?.userId, '1002');
      assert.equal(shared?.resolverClass, `${PASSWD_CLASS}.files1`);
      assert.equal((await dir.findUser('shared', 'corp'))?.resolver, 'files2');
      const alice = await dir.findUser('alice', 'myrealm');
      assert.deepEqual(alice?.info, {
        username: 'alice', userid: '1000', givenname: 'Alice', surname: 'Able', description: 'Alice Able',
        mobile: '+49 1', phone: '+49 2', email: 'alice@example.org',
      });
      // a login that really contains @realm is found literally …
      assert.equal((await dir.findUser('bob@corp', 'myrealm'))?.login, 'bob@corp');
      // … and when not found, the split is retried in the realm after the @
      const carol = await dir.findUser('carol@corp', 'myrealm');
      assert.equal(carol?.login, 'carol');
      assert.equal(carol?.realm, 'corp');
      assert.equal(await dir.findUser('nobody', 'myrealm'), null);
      assert.equal(await dir.findUser('alice', 'nosuchrealm'), null);
      assert.equal(await dir.findUser('alice', ''), null);
      assert.equal((await dir.findById('files2', '2000', 'corp'))?.login, 'carol');
      assert.equal(await dir.findById('nosuch', '2000', 'corp'), null);
    });

    test('checkPassword through the directory', async () => {
      const shared = (await dir.findUser('shared', 'myrealm'))!;
      assert.equal(await dir.checkPassword(shared, 'first'), true);
      assert.equal(await dir.checkPassword(shared, 'second'), false);
      assert.equal(await dir.checkPassword(shared, ''), false);
      assert.equal(await dir.checkPassword(shared, 'first\0'), false);
      assert.equal(await dir.checkPassword({ ...shared, resolver: 'gone' }, 'first'), false);
    });

    test('listUsers walks the realm resolvers with a limit', async () => {
      const all = await dir.listUsers('myrealm', {}, 100);
      assert.deepEqual(all.map((u) => `${u.login}/${u.resolver}`), ['alice/files1', 'bob@corp/files1', 'shared/files1', 'carol/files2', 'shared/files2']);
      assert.equal((await dir.listUsers('myrealm', {}, 2)).length, 2);
      assert.deepEqual((await dir.listUsers('myrealm', { username: 's*' }, 10, 'files2')).map((u) => u.userId), ['2002']);
    });

    test('user cache: TTL with a fake clock, flush, UserCacheTTL=0', async () => {
      await config.set('UserCacheTTL', '60');
      dir.flushCache();
      const first = await dir.findUser('carol', 'corp');
      assert.equal(first?.info.givenname, 'Carol');
      passwdFile(tmp, 'users2', [`carol:${crypt('carolpw')}:2000:2000:Caroline Cole:/:/bin/sh`, `shared:${crypt('second')}:2002:2002:Shared Two:/:/bin/sh`]);
      clock.advance(59_000);
      assert.equal((await dir.findUser('carol', 'corp'))?.info.givenname, 'Carol', 'cached within the TTL');
      assert.equal((await dir.findById('files2', '2000', 'corp'))?.info.givenname, 'Carol', 'cached by id too');
      clock.advance(2_000);
      assert.equal((await dir.findUser('carol', 'corp'))?.info.givenname, 'Caroline', 're-read after the TTL');
      passwdFile(tmp, 'users2', [`carol:${crypt('carolpw')}:2000:2000:Carrie Cole:/:/bin/sh`, `shared:${crypt('second')}:2002:2002:Shared Two:/:/bin/sh`]);
      assert.equal((await dir.findUser('carol', 'corp'))?.info.givenname, 'Caroline');
      dir.flushCache();
      assert.equal((await dir.findUser('carol', 'corp'))?.info.givenname, 'Carrie', 're-read after a flush');
      // the password is never taken from the cache
      const carol = (await dir.findUser('carol', 'corp'))!;
      passwdFile(tmp, 'users2', [`carol:${crypt('newpw')}:2000:2000:Carrie Cole:/:/bin/sh`]);
      assert.equal(await dir.checkPassword(carol, 'carolpw'), false);
      assert.equal(await dir.checkPassword(carol, 'newpw'), true);
      await config.set('UserCacheTTL', '0');
      passwdFile(tmp, 'users2', [`carol:${crypt('newpw')}:2000:2000:Cara Cole:/:/bin/sh`]);
      assert.equal((await dir.findUser('carol', 'corp'))?.info.givenname, 'Cara');
      await config.set('UserCacheTTL', '60');
    });

    test('delete: a resolver in use is refused; realms and the default realm are removed', async () => {
      await assert.rejects(dir.deleteResolver('files2'), (e: unknown) =>
        e instanceof OtpdError && e.code === Errors.resolverInUse.code && /'corp', 'myrealm'/.test(e.message));
      await dir.setResolver('tempres', 'passwdresolver', { fileName: users2 });
      await dir.setRealm('temp', ['tempres']);
      await dir.setDefaultRealm('temp');
      assert.equal(await dir.deleteRealm('TEMP'), true);
      assert.equal(dir.defaultRealm(), undefined);
      assert.equal(await dir.deleteRealm('temp'), false);
      assert.equal(await dir.deleteResolver('tempres'), true);
      assert.equal(await dir.deleteResolver('tempres'), false);
      await dir.setDefaultRealm('myrealm');
    });

    test('setResolver: create vs update vs rename, type change refused, bad names and specs', async () => {
      const refused = (code: number) => (e: unknown) => e instanceof OtpdError && e.code === code;
      await assert.rejects(dir.setResolver('files1', 'passwdresolver', { fileName: users1 }), refused(Errors.resolverExists.code));
      await dir.setResolver('files1', 'passwdresolver', { fileName: users1 }, 'files1');
      await assert.rejects(dir.setResolver('files1', 'sqlresolver', { Connect: 'sqlite:///x', Table: 't', Map: '{"userid":"a","username":"b"}' }, 'files1'), refused(Errors.resolverTypeChange.code));
      await assert.rejects(dir.setResolver('ab', 'passwdresolver', { fileName: users1 }), refused(Errors.invalidParameter.code));
      await assert.rejects(dir.setResolver('okname', 'nosuchresolver', {}), refused(Errors.unknownResolverType.code));
      await assert.rejects(dir.setRealm('bad', ['useridresolver.LDAPIdResolver.IdResolver.files1']), refused(Errors.unknownResolverSpec.code));
      await assert.rejects(dir.setRealm('bad', ['nosuch']), refused(Errors.unknownResolverSpec.code));
      await assert.rejects(dir.setRealm('bad realm', ['files1']), refused(Errors.invalidParameter.code));
      // rename: realms follow
      await dir.setResolver('files1renamed', 'passwdresolver', { fileName: users1 }, 'files1');
      assert.deepEqual(dir.resolversOfRealm('myrealm'), ['files1renamed', 'files2']);
      assert.equal((await dir.findUser('alice', 'myrealm'))?.resolver, 'files1renamed');
      await dir.setResolver('files1', 'passwdresolver', { fileName: users1 }, 'files1renamed');
      assert.deepEqual(dir.resolversOfRealm('myrealm'), ['files1', 'files2']);
    });

    test('another node sees changes through the users revision', async () => {
      const other = await makeDirectory(tdb, keyring, clock);
      const watcher = new RevisionWatcher(tdb.db, 60_000);
      other.dir.watch(watcher);
      await watcher.start();
      try {
        assert.equal((await other.dir.findUser('carol', 'corp'))?.login, 'carol');
        await dir.setRealm('corp', ['files1']);
        assert.equal((await other.dir.findUser('carol', 'corp'))?.login, 'carol', 'not yet polled');
        await watcher.poll();
        await new Promise((r) => setImmediate(r));
        await other.dir.load(); // waits for the reload the watcher started
        assert.equal(await other.dir.findUser('carol', 'corp'), null);
        assert.deepEqual(other.dir.resolversOfRealm('corp'), ['files1']);
      } finally {
        watcher.stop();
        await other.dir.close();
        await dir.setRealm('corp', ['files2']);
      }
    });
  });
}

describe('UserDirectory with LDAP: secrets and fail-closed lookups', { skip: haveBinary(SLAPD_BIN, 'slapd') }, () => {
  let tdb: TestDb;
  let ldap: Slapd;
  let tmp: string;
  const keyring = KeyRing.fromBytes();
  const clock = new FakeClock();
  let dir: UserDirectory;

  before(async () => {
    [tdb, ldap] = await Promise.all([createTestDb('sqlite'), startSlapd()]);
    tmp = mkdtempSync(join(tmpdir(), 'otpd-dir-'));
    ({ dir } = await makeDirectory(tdb, keyring, clock));
  });
  after(async () => {
    await dir?.close();
    await Promise.all([tdb?.drop(), ldap?.dispose()]);
    rmSync(tmp, { recursive: true, force: true });
  });

  const ldapParams = (url: string) => ({
    PRESET: 'openldap', LDAPURI: url, LDAPBASE: FIXTURE_BASE, BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '2',
  });

  test('BINDPW is sealed at rest, censored on the way out, and __CENSORED__ keeps it', async () => {
    await dir.setResolver('ldapusers', 'ldapresolver', ldapParams(ldap.url));
    const row = await tdb.db.kysely.selectFrom('resolvers').selectAll().where('name', '=', 'ldapusers').executeTakeFirstOrThrow();
    assert.equal(row.type, 'ldapresolver');
    assert.ok(!row.config.includes(`"BINDPW":"${FIXTURE_ADMIN_PW}"`));
    const stored = JSON.parse(row.config) as Record<string, string>;
    assert.match(stored.BINDPW, /^g1:/);
    assert.equal(keyring.decryptString('config', stored.BINDPW), FIXTURE_ADMIN_PW);
    const shown = dir.describeResolver('ldapusers');
    assert.equal(shown.type, 'ldapresolver');
    assert.equal(shown.data.BINDPW, '__CENSORED__');
    assert.equal(shown.data.LDAPURI, ldap.url);
    assert.equal(shown.spec, 'useridresolver.LDAPIdResolver.IdResolver.ldapusers');
    // round trip of what getResolver showed: the password stays
    await dir.setResolver('ldapusers', 'ldapresolver', shown.data, 'ldapusers');
    await dir.setRealm('ldaprealm', ['ldapusers']);
    const alice = await dir.findUser('alice', 'ldaprealm');
    assert.equal(alice?.info.email, 'alice@example.org');
    assert.equal(await dir.checkPassword(alice!, 'alicepw'), true);
    assert.equal(await dir.checkPassword(alice!, 'bad'), false);
    // a new value replaces it (wrong password → service bind fails)
    await dir.setResolver('ldapusers', 'ldapresolver', { ...shown.data, BINDPW: 'wrong' }, 'ldapusers');
    await assert.rejects(dir.findUser('bob', 'ldaprealm'), UserStoreUnavailableError);
    await dir.setResolver('ldapusers', 'ldapresolver', { ...shown.data, BINDPW: FIXTURE_ADMIN_PW }, 'ldapusers');
    assert.equal((await dir.findUser('bob', 'ldaprealm'))?.login, 'bob');
    const health = await dir.testResolver('ldapusers');
    assert.equal(health.ok, true);
    const unsaved = await dir.testResolver('ldapusers', 'ldapresolver', shown.data);
    assert.equal(unsaved.ok, true, unsaved.error);
  });

  test('an unreachable first resolver fails the lookup (fail closed), even if a later one has the user', async () => {
    const file = passwdFile(tmp, 'local', [`alice:${crypt('localpw')}:1:1::/:/bin/sh`]);
    await dir.setResolver('deadldap', 'ldapresolver', ldapParams(`ldap://127.0.0.1:${await freePort()}`));
    await dir.setResolver('localfile', 'passwdresolver', { fileName: file });
    await dir.setRealm('mixed', ['deadldap', 'localfile']);
    await assert.rejects(dir.findUser('alice', 'mixed'), (e: unknown) =>
      e instanceof UserStoreUnavailableError && /user store unavailable: deadldap/.test(e.message));
    await dir.setRealm('mixed', ['localfile', 'deadldap']);
    assert.equal((await dir.findUser('alice', 'mixed'))?.resolver, 'localfile');
  });

  test('cached users survive a directory outage until the TTL ends; password checks do not', async () => {
    await dir.setResolver('outage', 'ldapresolver', ldapParams(ldap.url));
    await dir.setRealm('outage', ['outage']);
    const carol = (await dir.findUser('carol', 'outage'))!;
    await ldap.stop();
    try {
      assert.equal((await dir.findUser('carol', 'outage'))?.userId, carol.userId);
      await assert.rejects(dir.checkPassword(carol, 'carolpw'), UserStoreUnavailableError);
      clock.advance(121_000);
      await assert.rejects(dir.findUser('carol', 'outage'), UserStoreUnavailableError);
    } finally {
      await ldap.restart();
    }
  });
});
