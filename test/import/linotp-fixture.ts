/**
 * A LinOTP-format database written from spec/linotp.md (9.2 secrets at rest, 1.5 config entries,
 * 1.4 token fields) and the table layout otpd documents in docs/migration.md, on SQLite,
 * PostgreSQL or MariaDB. The encryption here is written from the spec with node:crypto, apart
 * from otpd's reader (src/crypto/linotp.ts), so the two check each other.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import mysql from 'mysql2';
import mysqlPromise from 'mysql2/promise';
import SQLite from 'better-sqlite3';
import type { DialectName } from '../../src/store/db.ts';
import { MYSQL_ADMIN_URL, PG_ADMIN_URL } from '../helpers/db.ts';

export interface LinotpFixture {
  url: string;
  encKeyFile: string;
  encKey: Buffer;
  /** Every secret the fixture holds in clear, to assert none is ever printed. */
  secrets: string[];
  drop(): Promise<void>;
}

/** Spec 9.2: AES-256-CBC of the hex text, PKCS#7, random IV; both hex. */
function seal(key: Buffer, plain: Buffer): { enc: string; iv: string } {
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', key, iv);
  return { enc: Buffer.concat([c.update(Buffer.from(plain.toString('hex'), 'latin1')), c.final()]).toString('hex'), iv: iv.toString('hex') };
}

/** Spec 9.2: SHA-256(pin || iv16), iv in LinOtpSeed. */
export function linotpPin(pin: string): { hash: string; iv: string } {
  const iv = randomBytes(16);
  return { hash: createHash('sha256').update(Buffer.from(pin, 'utf8')).update(iv).digest('hex'), iv: iv.toString('hex') };
}

export interface FixtureToken {
  id: number;
  serial: string;
  type: string;
  seed?: Buffer;
  /** a stored value other than a seed (pw: a crypt hash) */
  rawSecret?: string;
  pin?: string;
  /** PinHash column as stored, overriding `pin` */
  pinHashRaw?: string;
  userid?: string;
  resClass?: string;
  realms?: string[];
  count?: number;
  otplen?: number;
  maxFail?: number;
  failCount?: number;
  active?: boolean;
  info?: Record<string, string>;
  desc?: string;
}

export interface FixtureContent {
  /** config entries: key (with linotp./enclinotp. prefix), clear value, encrypted? */
  config: { key: string; value: string; encrypt?: boolean; type?: string }[];
  realms: string[];
  tokens: FixtureToken[];
}

async function open(dialect: DialectName, dir: string): Promise<{ kysely: Kysely<any>; url: string; drop: () => Promise<void> }> {
  const name = `linotp_t_${randomBytes(5).toString('hex')}`;
  if (dialect === 'sqlite') {
    const file = join(dir, 'linotp.db');
    return { kysely: new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(file) }) }), url: `sqlite:${file}`, drop: async () => undefined };
  }
  if (dialect === 'postgres') {
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
    return {
      kysely: new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) }), url,
      drop: async () => {
        const c = new pg.Client({ connectionString: PG_ADMIN_URL });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      },
    };
  }
  const admin = await mysqlPromise.createConnection(MYSQL_ADMIN_URL);
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = `${MYSQL_ADMIN_URL.replace(/\/$/, '')}/${name}`;
  return {
    kysely: new Kysely<any>({ dialect: new MysqlDialect({ pool: mysql.createPool({ uri: url, connectionLimit: 2 }) }) }), url,
    drop: async () => {
      const c = await mysqlPromise.createConnection(MYSQL_ADMIN_URL);
      await c.query(`drop database if exists ${name}`);
      await c.end();
    },
  };
}

/** Builds the database and the encKey file (in `dir`). */
export async function buildLinotpDatabase(dialect: DialectName, dir: string, content: FixtureContent): Promise<LinotpFixture> {
  const encKey = randomBytes(96);
  const encKeyFile = join(dir, 'encKey');
  writeFileSync(encKeyFile, encKey, { mode: 0o600 });
  const seedKey = encKey.subarray(0, 32);
  const configKey = encKey.subarray(32, 64);
  const { kysely: db, url, drop } = await open(dialect, dir);
  const secrets: string[] = [];
  const bool = (b: boolean) => (dialect === 'sqlite' ? (b ? 1 : 0) : b);
  try {
    await db.schema.createTable('Config').addColumn('Key', 'varchar(255)', (c) => c.primaryKey()).addColumn('Value', 'text')
      .addColumn('Type', 'varchar(255)').addColumn('Description', 'varchar(2000)').execute();
    let t = db.schema.createTable('Token').addColumn('LinOtpTokenId', 'integer', (c) => c.primaryKey());
    for (const col of ['LinOtpTokenDesc', 'LinOtpTokenSerialnumber', 'LinOtpTokenType', 'LinOtpIdResolver', 'LinOtpIdResClass', 'LinOtpUserid', 'LinOtpKeyEnc', 'LinOtpKeyIV', 'LinOtpPinHash', 'LinOtpSeed']) {
      t = t.addColumn(col, 'varchar(1024)');
    }
    t = t.addColumn('LinOtpTokenInfo', 'text');
    for (const col of ['LinOtpOtpLen', 'LinOtpMaxFail', 'LinOtpFailCount', 'LinOtpCount', 'LinOtpCountWindow', 'LinOtpSyncWindow']) t = t.addColumn(col, 'integer');
    await t.addColumn('LinOtpIsactive', 'boolean').execute();
    await db.schema.createTable('Realm').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'varchar(255)').addColumn('default', 'boolean').execute();
    await db.schema.createTable('TokenRealm').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('token_id', 'integer').addColumn('realm_id', 'integer').execute();

    for (const e of content.config) {
      let value = e.value;
      if (e.encrypt) {
        secrets.push(e.value);
        const s = seal(configKey, Buffer.from(e.value, 'utf8'));
        value = `${s.iv}:${s.enc}`;
      }
      await db.insertInto('Config').values({ Key: e.key, Value: value, Type: e.type ?? (e.encrypt ? 'password' : ''), Description: '' }).execute();
    }
    for (const [i, name] of content.realms.entries()) await db.insertInto('Realm').values({ id: i + 1, name, default: bool(false) }).execute();
    let tr = 1;
    for (const tok of content.tokens) {
      let keyEnc = '';
      let keyIv = '';
      if (tok.seed || tok.rawSecret !== undefined) {
        const plain = tok.seed ?? Buffer.from(tok.rawSecret!, 'utf8');
        if (tok.seed) secrets.push(tok.seed.toString('hex'), tok.seed.toString('base64'));
        const s = seal(seedKey, plain);
        keyEnc = s.enc;
        keyIv = s.iv;
      }
      const pin = tok.pin === undefined ? { hash: '', iv: '' } : linotpPin(tok.pin);
      if (tok.pin) secrets.push(tok.pin);
      await db.insertInto('Token').values({
        LinOtpTokenId: tok.id, LinOtpTokenDesc: tok.desc ?? '', LinOtpTokenSerialnumber: tok.serial, LinOtpTokenType: tok.type,
        LinOtpIdResolver: tok.userid ? 'USERS_FILE' : '', LinOtpIdResClass: tok.resClass ?? '', LinOtpUserid: tok.userid ?? '',
        LinOtpKeyEnc: keyEnc, LinOtpKeyIV: keyIv, LinOtpPinHash: tok.pinHashRaw ?? pin.hash, LinOtpSeed: pin.iv,
        LinOtpTokenInfo: JSON.stringify(tok.info ?? { hashlib: 'sha1' }), LinOtpOtpLen: tok.otplen ?? 6, LinOtpMaxFail: tok.maxFail ?? 10,
        LinOtpFailCount: tok.failCount ?? 0, LinOtpCount: tok.count ?? 0, LinOtpCountWindow: 10, LinOtpSyncWindow: 1000, LinOtpIsactive: bool(tok.active ?? true),
      }).execute();
      for (const realm of tok.realms ?? []) {
        await db.insertInto('TokenRealm').values({ id: tr++, token_id: tok.id, realm_id: content.realms.indexOf(realm) + 1 }).execute();
      }
    }
  } finally {
    await db.destroy();
  }
  return { url, encKeyFile, encKey, secrets, drop };
}
