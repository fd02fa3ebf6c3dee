/**
 * Invariants (security.md 25, 26): logins are escaped for LDAP filters (no injection),
 * an empty or NUL-containing password is refused before any bind, certificate
 * verification is on by default, and an unreachable directory gives a quick
 * "user store unavailable" error, never a hang and never "authenticated".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { ErrorCodes, OtpdError, UserStoreUnavailableError } from '../../src/errors.ts';
import { escapeFilterValue, guidToBytes, guidToString, ldapResolverType, LDAP_PRESETS } from '../../src/users/ldap.ts';
import type { UserStore } from '../../src/users/types.ts';
import { FakeClock, systemClock } from '../../src/util/clock.ts';
import { haveBinary } from '../helpers/require.ts';
import {
  FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, FIXTURE_USERS, fixtureDn, freePort, SLAPD_BIN, startSlapd, type Slapd,
} from '../fixtures/slapd.ts';

const skip = haveBinary(SLAPD_BIN, 'slapd ldap-utils');
const logger = pino({ level: 'silent' });

function config(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return ldapResolverType.normalize({
    PRESET: 'openldap',
    LDAPURI: url,
    LDAPBASE: FIXTURE_BASE,
    BINDDN: FIXTURE_ADMIN_DN,
    BINDPW: FIXTURE_ADMIN_PW,
    UIDTYPE: 'DN',
    EnforceTLS: 'False',
    TIMEOUT: '2;3',
    ...extra,
  });
}

function store(url: string, extra: Record<string, string> = {}, clock = systemClock): UserStore {
  return ldapResolverType.create('ldaptest', config(url, extra), { logger, clock });
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t = Date.now();
  try {
    const value = await fn();
    return { ms: Date.now() - t, value };
  } catch (error) {
    return { ms: Date.now() - t, error };
  }
}

describe('escaping and GUIDs', () => {
  test('RFC 4515 escapes * ( ) \\ NUL', () => {
    assert.equal(escapeFilterValue('a*b(c)d\\e\0f'), 'a\\2ab\\28c\\29d\\5ce\\00f');
    assert.equal(escapeFilterValue("o'brien"), "o'brien");
    assert.equal(escapeFilterValue('jörg'), 'jörg');
  });
  test('objectGUID round trip uses the little-endian field layout', () => {
    const bytes = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    assert.equal(guidToString(bytes), '33221100-5544-7766-8899-aabbccddeeff');
    assert.deepEqual(guidToBytes('33221100-5544-7766-8899-aabbccddeeff'), bytes);
    assert.equal(guidToBytes('not-a-guid'), undefined);
  });
  test('presets and validation', () => {
    const ad = ldapResolverType.normalize({ PRESET: 'ad', LDAPURI: 'ldaps://dc1.example.org', LDAPBASE: 'dc=example,dc=org' });
    assert.equal(ad.LOGINNAMEATTRIBUTE, 'sAMAccountName');
    assert.equal(ad.UIDTYPE, 'objectGUID');
    assert.match(ad.LDAPFILTER, /userAccountControl:1\.2\.840\.113556\.1\.4\.803:=2/);
    assert.equal(LDAP_PRESETS.openldap.UIDTYPE, 'entryUUID');
    assert.throws(() => ldapResolverType.normalize({ PRESET: 'openldap', LDAPBASE: 'dc=x' }),
      (e: unknown) => e instanceof OtpdError && e.code === ErrorCodes.parameter && /LDAPURI/.test(e.message));
    assert.throws(() => ldapResolverType.normalize({ ...LDAP_PRESETS.openldap, LDAPURI: 'ldap://h', LDAPBASE: 'dc=x', LDAPFILTER: '(uid=alice)' }),
      /LDAPFILTER/);
    assert.throws(() => ldapResolverType.normalize({ ...LDAP_PRESETS.openldap, LDAPURI: 'http://h', LDAPBASE: 'dc=x' }), /LDAPURI/);
    assert.throws(() => ldapResolverType.normalize({ ...LDAP_PRESETS.openldap, LDAPURI: 'ldap://h', LDAPBASE: 'dc=x', USERINFO: '{"email": "mail)("}' }),
      /USERINFO\.email/);
    // key names are matched case-insensitively and stored in canonical spelling
    const c = ldapResolverType.normalize({ ...LDAP_PRESETS.openldap, ldapuri: 'ldap://h', ldapbase: 'dc=x', enforcetls: 'false' });
    assert.equal(c.LDAPURI, 'ldap://h');
    assert.equal(c.EnforceTLS, 'False');
  });
});

describe('LDAP resolver against slapd', { skip }, () => {
  let ldap: Slapd;
  before(async () => {
    ldap = await startSlapd({ tls: true });
  });
  after(async () => {
    await ldap?.dispose();
  });

  test('lookup maps attributes: mail+mobile, mail only, mobile only, neither', async () => {
    const s = store(ldap.url);
    const alice = await s.lookup('alice');
    assert.ok(alice);
    assert.equal(alice.userId, fixtureDn('alice'));
    assert.equal(alice.dn, fixtureDn('alice'));
    assert.deepEqual(
      { ...alice.info },
      { username: 'alice', userid: fixtureDn('alice'), email: 'alice@example.org', mobile: '+12015550101', phone: '+12015550201', surname: 'Able', givenname: 'Alice' },
    );
    const bob = await s.lookup('bob');
    assert.equal(bob?.info.email, 'bob@example.org');
    assert.equal(bob?.info.mobile, undefined);
    const carol = await s.lookup('carol');
    assert.equal(carol?.info.mobile, '+12015550103');
    assert.equal(carol?.info.email, undefined);
    const dave = await s.lookup('dave');
    assert.ok(dave);
    assert.equal(dave.info.email, undefined);
    assert.equal(dave.info.mobile, undefined);
    assert.equal(await s.lookup('nobody'), null);
  });

  test('non-ASCII and LDAP-special logins are found exactly', async () => {
    const s = store(ldap.url);
    const joerg = await s.lookup('jörg');
    assert.equal(joerg?.info.surname, 'Müller');
    assert.equal(joerg?.dn, fixtureDn('jörg'));
    const obrien = await s.lookup("o'brien(x)*");
    assert.equal(obrien?.dn, fixtureDn("o'brien(x)*"));
    assert.equal(await s.checkPassword(obrien!, 'obrienpw'), true);
    assert.equal(await s.checkPassword(joerg!, 'pässwörd'), true);
    assert.equal(await s.checkPassword(joerg!, 'passwort'), false);
  });

  test('filter injection attempts find nobody', async () => {
    const s = store(ldap.url);
    for (const login of ['*', 'a*', '*)(uid=*', ')(uid=*', 'alice)(uid=*', 'alice)(|(uid=*', '*)(|(objectClass=*', 'alice\0', '\0', "o'brien(x)\\2a", 'o\'brien(x)**']) {
      assert.equal(await s.lookup(login), null, `login ${JSON.stringify(login)} must not match`);
    }
  });

  test('password check: right, wrong, empty, NUL, wildcard', async () => {
    const s = store(ldap.url);
    const alice = (await s.lookup('alice'))!;
    assert.equal(await s.checkPassword(alice, 'alicepw'), true);
    assert.equal(await s.checkPassword(alice, 'wrong'), false);
    assert.equal(await s.checkPassword(alice, ''), false);
    assert.equal(await s.checkPassword(alice, 'alicepw\0'), false);
    assert.equal(await s.checkPassword(alice, 'alicepw\0junk'), false);
    assert.equal(await s.checkPassword(alice, '*'), false);
    // an unknown DN never authenticates
    assert.equal(await s.checkPassword({ ...alice, dn: fixtureDn('ghost') }, 'alicepw'), false);
    assert.equal(await s.checkPassword({ ...alice, dn: '' }, 'alicepw'), false);
  });

  test('empty and NUL passwords are refused before any bind (no server is even asked)', async () => {
    const dead = `ldap://127.0.0.1:${await freePort()}`;
    const s = store(dead);
    const user = { login: 'alice', userId: fixtureDn('alice'), dn: fixtureDn('alice'), info: { username: 'alice', userid: '' } };
    assert.equal(await s.checkPassword(user, ''), false);
    assert.equal(await s.checkPassword(user, 'a\0b'), false);
    // the same store does ask the (dead) server for a real password
    await assert.rejects(s.checkPassword(user, 'alicepw'), UserStoreUnavailableError);
  });

  test('concurrent burst of password checks gives the right answer for each', async () => {
    const s = store(ldap.url);
    const users = await Promise.all(FIXTURE_USERS.map((u) => s.lookup(u.uid)));
    const checks = FIXTURE_USERS.flatMap((u, i) => [
      s.checkPassword(users[i]!, u.password).then((ok) => assert.equal(ok, true, u.uid)),
      s.checkPassword(users[i]!, `${u.password}x`).then((ok) => assert.equal(ok, false, u.uid)),
    ]);
    await Promise.all(checks);
  });

  test('user ids: DN and entryUUID round trip through byId; DNs outside the base are refused', async () => {
    const byDn = store(ldap.url);
    const alice = (await byDn.lookup('alice'))!;
    assert.equal((await byDn.byId(alice.userId))?.login, 'alice');
    assert.equal(await byDn.byId(`cn=admin,dc=example,dc=org`), null);
    assert.equal(await byDn.byId(fixtureDn('ghost')), null);

    const byUuid = store(ldap.url, { UIDTYPE: 'entryUUID' });
    const a2 = (await byUuid.lookup('alice'))!;
    assert.match(a2.userId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(a2.dn, fixtureDn('alice'));
    const again = await byUuid.byId(a2.userId);
    assert.equal(again?.login, 'alice');
    assert.equal(again?.info.email, 'alice@example.org');
    assert.equal(await byUuid.checkPassword(again!, 'alicepw'), true);
    assert.equal(await byUuid.byId('*'), null);
  });

  test('search with wildcards and the list filter', async () => {
    const s = store(ldap.url);
    const all = await s.search({}, 100);
    assert.deepEqual(all.map((u) => u.login).sort(), FIXTURE_USERS.map((u) => u.uid).sort());
    const a = await s.search({ username: 'a*' }, 100);
    assert.deepEqual(a.map((u) => u.login), ['alice']);
    const mails = await s.search({ email: '*@example.org' }, 100);
    assert.equal(mails.length, FIXTURE_USERS.filter((u) => u.mail).length);
    const limited = await s.search({}, 3);
    assert.equal(limited.length, 3);
    // a pattern cannot break out of its filter component
    assert.deepEqual(await s.search({ username: 'alice)(uid=*' }, 100), []);
  });

  test('testResolver: connect, bind, count, sample', async () => {
    const health = await store(ldap.url).test();
    assert.equal(health.ok, true, health.error);
    assert.equal(health.userCount, FIXTURE_USERS.length);
    assert.ok(health.sample?.username);
    const bad = await store(ldap.url, { BINDPW: 'wrong' }).test();
    assert.equal(bad.ok, false);
    assert.match(bad.error ?? '', /user store unavailable: .*service bind failed/);
  });

  test('wrong service password is "unavailable", not "no such user"', async () => {
    await assert.rejects(store(ldap.url, { BINDPW: 'wrong' }).lookup('alice'), (e: unknown) =>
      e instanceof UserStoreUnavailableError && e.code === ErrorCodes.userStoreUnavailable);
  });

  test('failover: a dead URI first, the live one answers within the timeout', async () => {
    const dead = `ldap://127.0.0.1:${await freePort()}`;
    const s = store(`${dead},${ldap.url}`);
    const r = await timed(() => s.lookup('alice'));
    assert.equal(r.error, undefined);
    assert.equal(r.value?.login, 'alice');
    assert.ok(r.ms < 2000, `took ${r.ms} ms`);
    const alice = r.value!;
    assert.equal(await s.checkPassword(alice, 'alicepw'), true);
  });

  test('a server that accepts but never answers times out (no hang) and the next URI is used', async () => {
    const sockets: Socket[] = [];
    const blackhole: Server = createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    const hole = `ldap://127.0.0.1:${(blackhole.address() as { port: number }).port}`;
    try {
      const only = await timed(() => store(hole, { TIMEOUT: '1;1' }).lookup('alice'));
      assert.ok(only.error instanceof UserStoreUnavailableError, String(only.error));
      assert.match((only.error as Error).message, /^user store unavailable: ldaptest: /);
      assert.ok(only.ms < 2500, `took ${only.ms} ms`);
      const both = await timed(() => store(`${hole},${ldap.url}`, { TIMEOUT: '1;1' }).lookup('alice'));
      assert.equal(both.value?.login, 'alice');
      assert.ok(both.ms < 2500, `took ${both.ms} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      blackhole.close();
    }
  });

  describe('TLS', () => {
    test('StartTLS with the CA verifies and works', async () => {
      const s = store(ldap.url, { EnforceTLS: 'True', CACERTIFICATE: ldap.caPem! });
      const alice = await s.lookup('alice');
      assert.equal(alice?.login, 'alice');
      assert.equal(await s.checkPassword(alice!, 'alicepw'), true);
    });
    test('ldaps:// with the CA works', async () => {
      const s = store(ldap.ldapsUrl!, { CACERTIFICATE: ldap.caPem! });
      assert.equal((await s.lookup('bob'))?.login, 'bob');
    });
    test('certificate verification is on by default: an unknown CA is refused', async () => {
      const plain = ldapResolverType.normalize({
        PRESET: 'openldap', LDAPURI: ldap.url, LDAPBASE: FIXTURE_BASE, BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW,
      });
      assert.equal(plain.EnforceTLS, undefined); // default applies: StartTLS on
      const s = ldapResolverType.create('tlsdefault', plain, { logger, clock: systemClock });
      await assert.rejects(s.lookup('alice'), (e: unknown) => e instanceof UserStoreUnavailableError && /certificate/i.test(e.message));
      const ldaps = store(ldap.ldapsUrl!);
      await assert.rejects(ldaps.lookup('alice'), UserStoreUnavailableError);
    });
    test('only_trusted_certs=False is an explicit opt-out', async () => {
      const s = store(ldap.url, { EnforceTLS: 'True', only_trusted_certs: 'False' });
      assert.equal((await s.lookup('alice'))?.login, 'alice');
    });
  });
});

describe('stopped slapd and circuit breaker', { skip }, () => {
  let ldap: Slapd;
  before(async () => {
    ldap = await startSlapd();
  });
  after(async () => {
    await ldap?.dispose();
  });

  test('a stopped slapd gives a quick, clear error; after restart and the block time it works again', async () => {
    const clock = new FakeClock();
    const s = store(ldap.url, { BLOCK_SECONDS: '30' }, clock);
    const alice = (await s.lookup('alice'))!;
    await ldap.stop();

    const down = await timed(() => s.lookup('alice'));
    assert.ok(down.error instanceof UserStoreUnavailableError);
    assert.match((down.error as Error).message, /^user store unavailable: ldaptest: ldap:\/\/127\.0\.0\.1:\d+: connection refused 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    assert.ok(down.ms < 1000, `took ${down.ms} ms`);

    await ldap.restart();
    // the breaker is open: no connection is tried for BLOCK_SECONDS
    const open = await timed(() => s.checkPassword(alice, 'alicepw'));
    assert.ok(open.error instanceof UserStoreUnavailableError);
    assert.match((open.error as Error).message, /failed recently; next try in 30 s/);
    assert.ok(open.ms < 50, `took ${open.ms} ms`);

    clock.advance(30_001);
    assert.equal(await s.checkPassword(alice, 'alicepw'), true);
    assert.equal((await s.lookup('carol'))?.login, 'carol');
  });

  test('a blocked server is skipped while another is up; it is tried again after the block time', async () => {
    const clock = new FakeClock();
    const spare = await startSlapd();
    try {
      const s = store(`${ldap.url},${spare.url}`, { BLOCK_SECONDS: '30' }, clock);
      await ldap.stop();
      assert.equal((await s.lookup('alice'))?.login, 'alice'); // via spare; first server blocked
      await ldap.restart();
      await spare.stop();
      // first server still blocked, spare down → nothing left to ask
      await assert.rejects(s.lookup('alice'), UserStoreUnavailableError);
      clock.advance(30_001);
      assert.equal((await s.lookup('alice'))?.login, 'alice'); // first server again
    } finally {
      await spare.dispose();
    }
  });
});
