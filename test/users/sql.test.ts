/**
 * SQL user store on SQLite, PostgreSQL and MariaDB: lookups, column mapping,
 * every supported password format with vectors made by real tools at test time
 * (openssl passwd, mkpasswd, slappasswd, bcryptjs), unknown formats refused,
 * injection attempts, Where filter, and a clear error when the database is down.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import pg from 'pg';
import mysql from 'mysql2/promise';
import SQLite from 'better-sqlite3';
import { pino } from 'pino';
import { ErrorCodes, OtpdError, UserStoreUnavailableError } from '../../src/errors.ts';
import { hashScheme, verifyPassword } from '../../src/users/passwords.ts';
import { sqlResolverType } from '../../src/users/sql.ts';
import type { UserStore } from '../../src/users/types.ts';
import { systemClock } from '../../src/util/clock.ts';
import { availableDialects, MYSQL_ADMIN_URL, PG_ADMIN_URL } from '../helpers/db.ts';
import { haveBinary } from '../helpers/require.ts';
import { freePort } from '../fixtures/slapd.ts';

const logger = pino({ level: 'silent' });
const skipTools = haveBinary('mkpasswd', 'whois') || haveBinary('slappasswd', 'slapd');

interface Row {
  id: number;
  login: string;
  pw: string | null;
  salt: string | null;
  mail: string | null;
  mobile: string | null;
  first: string | null;
  last: string | null;
  active: number;
  /** the clear password the test uses */
  clear: string;
  /** whether the format is supported */
  ok: boolean;
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();

let madeRows: Row[] | undefined;
/** One user per stored format (made once per run); clear passwords contain non-ASCII on purpose. */
function makeRows(): Row[] {
  madeRows ??= generateRows();
  return madeRows;
}

function generateRows(): Row[] {
  const vectors: [string, (pw: string) => string, boolean][] = [
    ['md5crypt', (pw) => run('openssl', ['passwd', '-1', pw]), true],
    ['sha256crypt', (pw) => run('openssl', ['passwd', '-5', pw]), true],
    ['sha512crypt', (pw) => run('openssl', ['passwd', '-6', pw]), true],
    ['sha512rounds', (pw) => run('mkpasswd', ['-m', 'sha512crypt', '-R', '7000', pw]), true],
    ['md5mkpasswd', (pw) => run('mkpasswd', ['-m', 'md5crypt', pw]), true],
    ['bcrypt2b', (pw) => run('mkpasswd', ['-m', 'bcrypt', pw]), true],
    ['bcrypt2a', (pw) => run('mkpasswd', ['-m', 'bcrypt-a', pw]), true],
    ['bcrypt2y', (pw) => bcrypt.hashSync(pw, 6).replace(/^\$2b\$/, '$2y$'), true],
    ['scrypt7', (pw) => run('mkpasswd', ['-m', 'scrypt', pw]), true],
    ['ssha', (pw) => run('slappasswd', ['-h', '{SSHA}', '-s', pw]), true],
    ['sha', (pw) => run('slappasswd', ['-h', '{SHA}', '-s', pw]), true],
    ['smd5', (pw) => run('slappasswd', ['-h', '{SMD5}', '-s', pw]), true],
    ['ssha256', (pw) => run('slappasswd', ['-o', 'module-load=pw-sha2', '-h', '{SSHA256}', '-s', pw]), true],
    ['ssha512', (pw) => run('slappasswd', ['-o', 'module-load=pw-sha2', '-h', '{SSHA512}', '-s', pw]), true],
    ['sha512ldap', (pw) => run('slappasswd', ['-o', 'module-load=pw-sha2', '-h', '{SHA512}', '-s', pw]), true],
    ['cryptwrapped', (pw) => `{CRYPT}${run('openssl', ['passwd', '-6', pw])}`, true],
    ['argon2i', (pw) => run('slappasswd', ['-o', 'module-load=argon2', '-h', '{ARGON2}', '-s', pw]), true],
    ['plaintext', (pw) => pw, false],
    ['yescrypt', (pw) => run('mkpasswd', ['-m', 'yescrypt', pw]), false],
    ['descrypt', (pw) => run('mkpasswd', ['-m', 'descrypt', pw.slice(0, 8)]), false],
    ['nthash', (pw) => run('mkpasswd', ['-m', 'nt', pw]), false],
  ];
  const rows: Row[] = vectors.map(([name, make, ok], i) => {
    const clear = `pw-${name}-ü`;
    return {
      id: i + 1, login: `u_${name}`, pw: make(clear), salt: null, mail: null, mobile: null, first: null, last: null, active: 1, clear, ok,
    };
  });
  // a salt column with an unsalted digest: {SHA} over password + salt
  const salt = randomBytes(6).toString('hex');
  const saltedClear = 'salted-pw';
  rows.push({
    id: 100, login: 'u_saltcol', pw: `{SHA}${createHash('sha1').update(saltedClear + salt).digest('base64')}`, salt,
    mail: null, mobile: null, first: null, last: null, active: 1, clear: saltedClear, ok: true,
  });
  rows.push({ id: 101, login: 'alice', pw: run('openssl', ['passwd', '-6', 'alicepw']), salt: null, mail: 'alice@example.org', mobile: '+12015550101', first: 'Alice', last: 'Able', active: 1, clear: 'alicepw', ok: true });
  rows.push({ id: 102, login: 'bob_x', pw: null, salt: null, mail: 'bob@example.org', mobile: null, first: 'Bob', last: null, active: 1, clear: 'anything', ok: false });
  rows.push({ id: 103, login: 'bobyx', pw: null, salt: null, mail: null, mobile: null, first: null, last: null, active: 1, clear: 'anything', ok: false });
  rows.push({ id: 104, login: 'inactive', pw: run('openssl', ['passwd', '-6', 'inactivepw']), salt: null, mail: 'in@example.org', mobile: null, first: null, last: null, active: 0, clear: 'inactivepw', ok: true });
  rows.push({ id: 105, login: 'jörg', pw: run('openssl', ['passwd', '-6', 'pässwörd']), salt: null, mail: 'joerg@example.org', mobile: '+12015550105', first: 'Jörg', last: 'Müller', active: 1, clear: 'pässwörd', ok: true });
  return rows;
}

const MAP = JSON.stringify({
  userid: 'id', username: 'login', password: 'pw', salt: 'salt', email: 'mail', mobile: 'mobile', givenname: 'first', surname: 'last',
});
const CREATE = 'create table users_t (id integer primary key, login varchar(64) not null, pw varchar(255), salt varchar(64), mail varchar(128), mobile varchar(32), first varchar(64), last varchar(64), active integer not null)';

interface UserDb {
  config: Record<string, string>;
  drop(): Promise<void>;
}

async function createUserDb(dialect: string, rows: Row[]): Promise<UserDb> {
  const values = rows.map((r) => [r.id, r.login, r.pw, r.salt, r.mail, r.mobile, r.first, r.last, r.active]);
  const insert = 'insert into users_t (id, login, pw, salt, mail, mobile, first, last, active) values ';
  const name = `otpd_u_${randomBytes(5).toString('hex')}`;
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-users-'));
    const path = join(dir, 'users.db');
    const db = new SQLite(path);
    db.exec(CREATE);
    const stmt = db.prepare(`${insert}(?,?,?,?,?,?,?,?,?)`);
    for (const v of values) stmt.run(...v);
    db.close();
    return { config: { Connect: `sqlite:///${path}` }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  if (dialect === 'postgres') {
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/${name}`;
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    await c.query(CREATE);
    for (const v of values) await c.query(`${insert}($1,$2,$3,$4,$5,$6,$7,$8,$9)`, v);
    await c.end();
    return {
      // Driver/Server/Port/Database/User/Password style, as LinOTP's form sends it
      config: { Driver: 'postgresql+psycopg2', Server: url.hostname, Port: url.port || '5432', Database: name, User: decodeURIComponent(url.username), ...(url.password ? { Password: decodeURIComponent(url.password) } : {}) },
      drop: async () => {
        const a = new pg.Client({ connectionString: PG_ADMIN_URL });
        await a.connect();
        await a.query(`drop database if exists ${name} with (force)`);
        await a.end();
      },
    };
  }
  const admin = await mysql.createConnection(MYSQL_ADMIN_URL);
  await admin.query(`create database ${name} character set utf8mb4 collate utf8mb4_general_ci`);
  await admin.query(`use ${name}`);
  await admin.query(CREATE);
  for (const v of values) await admin.query(`${insert}(?,?,?,?,?,?,?,?,?)`, v);
  await admin.end();
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    config: { Connect: `mysql+pymysql:${url.toString().slice('mysql:'.length)}` },
    drop: async () => {
      const c = await mysql.createConnection(MYSQL_ADMIN_URL);
      await c.query(`drop database if exists ${name}`);
      await c.end();
    },
  };
}

describe('password formats (vectors from openssl, mkpasswd, slappasswd)', { skip: skipTools }, () => {
  test('every supported format verifies, wrong passwords do not, unsupported formats are refused', async () => {
    for (const r of makeRows()) {
      if (r.pw === null || r.salt !== null) continue;
      assert.equal(await verifyPassword(r.clear, r.pw), r.ok, `${r.login}: ${r.pw}`);
      assert.equal(await verifyPassword(`${r.clear}x`, r.pw), false, `${r.login} wrong password`);
      assert.equal(hashScheme(r.pw) !== undefined, r.ok, `${r.login} scheme`);
    }
  });
  test('empty, NUL and truncated hashes never verify', async () => {
    const h = run('openssl', ['passwd', '-6', 'x']);
    assert.equal(await verifyPassword('', h), false);
    assert.equal(await verifyPassword('x\0', h), false);
    assert.equal(await verifyPassword('x', h.slice(0, -1)), false);
    assert.equal(await verifyPassword('x', ''), false);
    assert.equal(await verifyPassword('x', null), false);
    assert.equal(await verifyPassword('x', '{SSHA}'), false);
    assert.equal(await verifyPassword('x', '$6$rounds=999999999$salt$abc'), false);
  });
});

const dialects = await availableDialects();

for (const { dialect, skip } of dialects) {
  describe(`SQL resolver on ${dialect}`, { skip: skip || skipTools }, () => {
    let rows: Row[];
    let udb: UserDb;
    let store: UserStore;
    const open = (extra: Record<string, string> = {}) =>
      sqlResolverType.create('sqltest', sqlResolverType.normalize({ ...udb.config, Table: 'users_t', Where: 'active = 1', Map: MAP, ...extra }), { logger, clock: systemClock });

    before(async () => {
      rows = makeRows();
      udb = await createUserDb(dialect, rows);
      store = open();
    });
    after(async () => {
      await store?.close();
      await udb?.drop();
    });

    test('lookup maps columns and never returns the password', async () => {
      const alice = await store.lookup('alice');
      assert.deepEqual(alice, {
        login: 'alice', userId: '101',
        info: { username: 'alice', userid: '101', email: 'alice@example.org', mobile: '+12015550101', givenname: 'Alice', surname: 'Able' },
      });
      const joerg = await store.lookup('jörg');
      assert.equal(joerg?.info.surname, 'Müller');
      assert.equal(await store.lookup('nobody'), null);
      assert.equal((await store.byId('101'))?.login, 'alice');
      assert.equal(await store.byId('999'), null);
    });

    test('every stored format: right password true, wrong false, unsupported refused', async () => {
      for (const r of rows.filter((x) => x.active === 1)) {
        const user = await store.lookup(r.login);
        assert.ok(user, r.login);
        assert.equal(await store.checkPassword(user, r.clear), r.ok, `${r.login} (${r.pw})`);
        assert.equal(await store.checkPassword(user, `${r.clear}!`), false, `${r.login} wrong`);
        assert.equal(await store.checkPassword(user, ''), false);
        assert.equal(await store.checkPassword(user, `${r.clear}\0`), false);
      }
    });

    test('Where excludes rows; injection attempts find nobody', async () => {
      assert.equal(await store.lookup('inactive'), null);
      assert.equal(await store.byId('104'), null);
      for (const login of ["' or '1'='1", "alice' --", 'alice\0', '%', 'a%', '*', "alice' or 1=1 #"]) {
        assert.equal(await store.lookup(login), null, login);
      }
    });

    test('search: * wildcard, LIKE characters are literal, limit applies', async () => {
      const a = await store.search({ username: 'a*' }, 100);
      assert.deepEqual(a.map((u) => u.login), ['alice']);
      const underscore = await store.search({ username: 'bob_*' }, 100);
      assert.deepEqual(underscore.map((u) => u.login), ['bob_x']);
      const all = await store.search({}, 1000);
      assert.equal(all.length, rows.filter((r) => r.active === 1).length);
      assert.equal((await store.search({}, 3)).length, 3);
      const mails = await store.search({ email: '*@example.org' }, 100);
      assert.deepEqual(mails.map((u) => u.login).sort(), ['alice', 'bob_x', 'jörg']);
    });

    test('testResolver counts users and samples one', async () => {
      const h = await store.test();
      assert.equal(h.ok, true, h.error);
      assert.equal(h.userCount, rows.filter((r) => r.active === 1).length);
      assert.ok(h.sample?.username);
    });

    test('a missing table is "user store unavailable"', async () => {
      const s = open({ Table: 'no_such_table' });
      try {
        await assert.rejects(s.lookup('alice'), (e: unknown) => e instanceof UserStoreUnavailableError && e.code === ErrorCodes.userStoreUnavailable);
        assert.equal((await s.test()).ok, false);
      } finally {
        await s.close();
      }
    });
  });
}

describe('SQL resolver configuration and outages', () => {
  test('normalize: required keys, identifiers, Where, password moved out of Connect', () => {
    const map = MAP;
    assert.throws(() => sqlResolverType.normalize({ Connect: 'sqlite:///x.db', Map: map }), /Table/);
    assert.throws(() => sqlResolverType.normalize({ Connect: 'sqlite:///x.db', Table: 'users; drop table x', Map: map }), /Table/);
    assert.throws(() => sqlResolverType.normalize({ Connect: 'sqlite:///x.db', Table: 't', Map: '{"userid":"id"}' }), /Map\.username/);
    assert.throws(() => sqlResolverType.normalize({ Connect: 'sqlite:///x.db', Table: 't', Map: '{"userid":"id","username":"a b"}' }), /Map\.username/);
    assert.throws(() => sqlResolverType.normalize({ Connect: 'sqlite:///x.db', Table: 't', Map: map, Where: 'a=1; drop table t' }), /Where/);
    assert.throws(() => sqlResolverType.normalize({ Connect: 'mssql://h/db', Table: 't', Map: map }), (e: unknown) => e instanceof OtpdError && /Connect/.test(e.message));
    const c = sqlResolverType.normalize({ connect: 'postgresql+psycopg2://otpd:s3cr%40t@db.example.org:5432/users', table: 'users', map });
    assert.equal(c.Connect, 'postgresql+psycopg2://otpd@db.example.org:5432/users');
    assert.equal(c.Password, 's3cr@t');
  });

  test('an unreachable database server fails quickly with "user store unavailable"', async () => {
    const port = await freePort();
    for (const Connect of [`postgresql://u@127.0.0.1:${port}/db`, `mysql://u@127.0.0.1:${port}/db`]) {
      const s = sqlResolverType.create('down', sqlResolverType.normalize({ Connect, Password: 'pw', Table: 't', Map: MAP, TIMEOUT: '2' }), { logger, clock: systemClock });
      const t = Date.now();
      await assert.rejects(s.lookup('alice'), (e: unknown) => e instanceof UserStoreUnavailableError && /^user store unavailable: down: /.test(e.message) && !e.message.includes('pw@'));
      assert.ok(Date.now() - t < 2500, `${Connect} took ${Date.now() - t} ms`);
      await s.close();
    }
    const missing = sqlResolverType.create('nofile', sqlResolverType.normalize({ Connect: 'sqlite:////nonexistent/dir/users.db', Table: 't', Map: MAP }), { logger, clock: systemClock });
    await assert.rejects(missing.lookup('alice'), UserStoreUnavailableError);
  });
});
