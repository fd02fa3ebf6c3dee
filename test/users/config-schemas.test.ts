/**
 * Resolver configuration schemas: a good config passes and is stored as sent (canonical keys,
 * no defaults added), every missing required key is 905 naming it, a wrong type or format is
 * 2300 naming the key, the checks a schema cannot express run after it, the secret keys come
 * from the schema's `secret: true`, and a store is only built from a config that passes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { Value } from 'typebox/value';
import { Errors, OtpdError } from '../../src/errors.ts';
import { LDAP_PRESETS, ldapResolverType } from '../../src/users/ldap.ts';
import { passwdResolverType } from '../../src/users/passwd.ts';
import { resolverTypes } from '../../src/users/registry.ts';
import { sqlResolverType } from '../../src/users/sql.ts';
import type { ResolverType } from '../../src/users/types.ts';
import { systemClock } from '../../src/util/clock.ts';

const deps = { logger: pino({ level: 'silent' }), clock: systemClock };

const LDAP_GOOD = {
  LDAPURI: 'ldaps://dc1.example.org, ldaps://dc2.example.org',
  LDAPBASE: 'dc=example,dc=org',
  BINDDN: 'cn=otpd,dc=example,dc=org',
  BINDPW: 'bind-secret',
  LOGINNAMEATTRIBUTE: 'uid',
  LDAPFILTER: '(&(uid=%s)(objectClass=inetOrgPerson))',
  LDAPSEARCHFILTER: '(uid=*)(objectClass=inetOrgPerson)',
  USERINFO: '{ "username": "uid", "email": "mail" }',
};
const SQL_GOOD = { Connect: 'postgresql://otpd@db.example.org:5432/users', Password: 'db-secret', Table: 'users', Map: '{"userid": "id", "username": "login"}' };
const PASSWD_GOOD = { fileName: '/etc/otpd/users' };

/** The OtpdError `f` throws: its code and message. */
function failure(f: () => unknown): { code: number; message: string } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof OtpdError, `not an OtpdError: ${String(e)}`);
    return { code: e.code, message: e.message };
  }
  assert.fail('did not throw');
}

function without<T extends Record<string, string>>(config: T, key: string): Record<string, string> {
  const out: Record<string, string> = { ...config };
  delete out[key];
  return out;
}

describe('ldapresolver schema', () => {
  test('a good config is stored as sent: schema spelling, canonical URI list and USERINFO, booleans True/False, no defaults added', () => {
    const stored = ldapResolverType.normalize({ ...LDAP_GOOD, enforcetls: 'no', ONLY_TRUSTED_CERTS: '1', PRESET: '', unknown: 'x' });
    assert.deepEqual(stored, {
      ...LDAP_GOOD,
      LDAPURI: 'ldaps://dc1.example.org,ldaps://dc2.example.org',
      USERINFO: '{"username":"uid","email":"mail"}',
      EnforceTLS: 'False',
      only_trusted_certs: 'True',
    });
    // the typed config the store is built from has every default
    const typed = Value.Default(ldapResolverType.schema, { ...stored }) as Record<string, string>;
    assert.ok(Value.Check(ldapResolverType.schema, typed));
    assert.deepEqual(
      [typed.UIDTYPE, typed.NOREFERRALS, typed.TIMEOUT, typed.SIZELIMIT, typed.BLOCK_SECONDS, typed.EnforceTLS],
      ['DN', 'True', '5;10', '500', '30', 'False'],
    );
  });

  test('each missing required key is 905 naming it', () => {
    const required = ['LDAPURI', 'LDAPBASE', 'LOGINNAMEATTRIBUTE', 'LDAPFILTER', 'LDAPSEARCHFILTER', 'USERINFO'];
    for (const key of required) {
      const f = failure(() => ldapResolverType.normalize(without(LDAP_GOOD, key)));
      assert.equal(f.code, Errors.missingParameter.code, key);
      assert.equal(f.message, `Missing parameter: '${key}'`);
    }
    assert.equal(failure(() => ldapResolverType.normalize({ ...LDAP_GOOD, LDAPURI: ' , ' })).message, "Missing parameter: 'LDAPURI'");
    // a preset fills the filters, attributes and USERINFO, not the server
    assert.equal(failure(() => ldapResolverType.normalize({ PRESET: 'openldap', LDAPBASE: 'dc=x' })).message, "Missing parameter: 'LDAPURI'");
  });

  test('a wrong type or format is 2300 naming the key', () => {
    const cases: [Record<string, string>, string][] = [
      [{ SIZELIMIT: 'many' }, 'SIZELIMIT: expected a non-negative integer'],
      [{ BLOCK_SECONDS: '-1' }, 'BLOCK_SECONDS: expected a non-negative integer'],
      [{ LOGINNAMEATTRIBUTE: 'uid)(x' }, 'LOGINNAMEATTRIBUTE: not an attribute name'],
      [{ UIDTYPE: 'object GUID' }, 'UIDTYPE: DN, entryUUID, objectGUID or an attribute name'],
      [{ CACERTIFICATE: 'not a pem' }, 'CACERTIFICATE: expected PEM certificate(s)'],
      // checks after the schema
      [{ LDAPURI: 'http://dc1.example.org' }, 'LDAPURI: use ldap:// or ldaps://: http://dc1.example.org'],
      [{ LDAPURI: 'ldap://dc1.example.org/dc=x' }, 'LDAPURI: host and port only: ldap://dc1.example.org/dc=x'],
      [{ LDAPFILTER: '(uid=alice)' }, 'LDAPFILTER: must contain %s for the login'],
      [{ USERINFO: '{"email": "mail)("}' }, 'USERINFO.email: not an attribute name'],
      [{ USERINFO: '["mail"]' }, 'USERINFO: expected a JSON object'],
      [{ TIMEOUT: 'soon' }, 'TIMEOUT: expected seconds: "n" or "connect;response"'],
      [{ PRESET: 'novell' }, 'PRESET: use openldap or ad'],
    ];
    for (const [change, problem] of cases) {
      const f = failure(() => ldapResolverType.normalize({ ...LDAP_GOOD, ...change }));
      assert.equal(f.code, Errors.invalidResolverConfig.code, problem);
      assert.equal(f.message, `Invalid resolver configuration: ${problem}`);
    }
    assert.match(failure(() => ldapResolverType.normalize({ ...LDAP_GOOD, LDAPSEARCHFILTER: '(uid=*))' })).message, /^Invalid resolver configuration: LDAPSEARCHFILTER: not a valid LDAP filter/);
  });

  test('presets fill only what the request leaves empty', () => {
    const stored = ldapResolverType.normalize({ PRESET: 'AD', LDAPURI: 'ldaps://dc1.example.org', LDAPBASE: 'dc=example,dc=org', UIDTYPE: 'DN' });
    assert.equal(stored.LOGINNAMEATTRIBUTE, LDAP_PRESETS.ad.LOGINNAMEATTRIBUTE);
    assert.equal(stored.UIDTYPE, 'DN');
  });
});

describe('sqlresolver schema', () => {
  test('a good config is stored as sent; a password inside Connect moves to Password', () => {
    assert.deepEqual(sqlResolverType.normalize({ ...SQL_GOOD, limit: '50' }), { ...SQL_GOOD, Map: '{"userid":"id","username":"login"}', Limit: '50' });
    const moved = sqlResolverType.normalize({ connect: 'mysql://otpd:p%40ss@db.example.org/users', table: 'users', map: SQL_GOOD.Map });
    assert.equal(moved.Connect, 'mysql://otpd@db.example.org/users');
    assert.equal(moved.Password, 'p@ss');
  });

  test('each missing required key is 905 naming it; Connect or Driver (+ Database) is required too', () => {
    for (const key of ['Table', 'Map']) assert.deepEqual(failure(() => sqlResolverType.normalize(without(SQL_GOOD, key))), { code: 905, message: `Missing parameter: '${key}'` });
    assert.equal(failure(() => sqlResolverType.normalize(without(SQL_GOOD, 'Connect'))).message, "Missing parameter: 'Connect or Driver'");
    assert.equal(failure(() => sqlResolverType.normalize({ ...without(SQL_GOOD, 'Connect'), Driver: 'postgresql' })).message, "Missing parameter: 'Database'");
  });

  test('a wrong type or format is 2300 naming the key', () => {
    const cases: [Record<string, string>, string][] = [
      [{ Port: '54x' }, 'Port: expected a non-negative integer'],
      [{ Limit: '1e3' }, 'Limit: expected a non-negative integer'],
      [{ TIMEOUT: '2.5' }, 'TIMEOUT: expected a non-negative integer'],
      [{ Table: 'users; drop table x' }, 'Table: letters, digits and _ only (optionally schema.table)'],
      [{ Where: 'active = 1 -- and more' }, 'Where: no ";" and no comments'],
      [{ Where: 'a = 1;\ndrop table t' }, 'Where: no ";" and no comments'],
      [{ Connect: 'mssql://h/db' }, 'Connect: use sqlite:, postgresql:// or mysql:// URLs'],
      [{ Map: 'userid=id' }, 'Map: not JSON'],
      [{ Map: '{"userid": "id"}' }, 'Map.username: required'],
      [{ Map: '{"userid": "id", "username": "a b"}' }, 'Map.username: not a column name'],
    ];
    for (const [change, problem] of cases) {
      assert.deepEqual(failure(() => sqlResolverType.normalize({ ...SQL_GOOD, ...change })), { code: 2300, message: `Invalid resolver configuration: ${problem}` }, problem);
    }
    // more than one schema problem: all of them, each with its key
    assert.equal(
      failure(() => sqlResolverType.normalize({ ...SQL_GOOD, Port: 'x', Limit: 'y' })).message,
      'Invalid resolver configuration: Port: expected a non-negative integer; Limit: expected a non-negative integer',
    );
  });
});

describe('passwdresolver schema', () => {
  test('fileName (any spelling) is the one required key', () => {
    assert.deepEqual(passwdResolverType.normalize({ filename: '/etc/otpd/users', other: 'x' }), PASSWD_GOOD);
    assert.deepEqual(failure(() => passwdResolverType.normalize({})), { code: 905, message: "Missing parameter: 'fileName'" });
    assert.deepEqual(failure(() => passwdResolverType.normalize({ fileName: '' })), { code: 905, message: "Missing parameter: 'fileName'" });
  });
});

describe('every resolver type', () => {
  const types: [ResolverType, Record<string, string>, string[]][] = [
    [ldapResolverType, LDAP_GOOD, ['BINDPW']],
    [sqlResolverType, SQL_GOOD, ['Password']],
    [passwdResolverType, PASSWD_GOOD, []],
  ];

  test('is registered', () => {
    assert.deepEqual(resolverTypes().map((t) => t.type).sort(), ['ldapresolver', 'passwdresolver', 'sqlresolver']);
  });

  test('secret keys come from the schema; every secret-looking key is marked', () => {
    for (const [type, , secrets] of types) {
      assert.deepEqual(type.secretKeys, secrets, type.type);
      for (const key of Object.keys(type.schema.properties)) {
        if (/pass|pw|secret|token/i.test(key)) assert.ok(type.secretKeys.includes(key), `${type.type}.${key} looks secret but is not marked`);
      }
    }
  });

  test('builds a store only from a config that passes the schema and the checks', async () => {
    for (const [type, good] of types) {
      const store = type.create('typed', type.normalize(good), deps);
      await store.close();
      const required = Object.keys(good).find((k) => (type.schema.required ?? []).includes(k))!;
      assert.equal(failure(() => type.create('typed', without(good, required), deps)).code, 905, `${type.type} without ${required}`);
    }
    assert.equal(failure(() => ldapResolverType.create('typed', { ...LDAP_GOOD, EnforceTLS: 'yes please' }, deps)).code, 2300);
    assert.equal(failure(() => sqlResolverType.create('typed', { ...SQL_GOOD, Map: '{}' }, deps)).message, 'Invalid resolver configuration: Map.userid: required');
  });

  test('hosts are read from the checked config', () => {
    assert.deepEqual(ldapResolverType.hosts?.(ldapResolverType.normalize(LDAP_GOOD)), [
      { key: 'LDAPURI', host: 'dc1.example.org' },
      { key: 'LDAPURI', host: 'dc2.example.org' },
    ]);
    assert.deepEqual(sqlResolverType.hosts?.(sqlResolverType.normalize(SQL_GOOD)), [{ key: 'Connect', host: 'db.example.org' }]);
    assert.equal(passwdResolverType.hosts, undefined);
  });
});
