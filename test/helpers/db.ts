import { Client } from 'pg';
import mysql from 'mysql2/promise';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { testTmpDir } from './tmp.ts';
import { openDatabase, type Db, type DialectName } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { inCI } from './require.ts';

export const PG_ADMIN_URL = process.env.OTPD_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const MYSQL_ADMIN_URL = process.env.OTPD_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306';

export interface TestDb {
  db: Db;
  url: string;
  dialect: DialectName;
  drop(): Promise<void>;
}

/** A fresh, migrated database of the given dialect, with its own name; drop() removes it. */
export async function createTestDb(dialect: DialectName): Promise<TestDb> {
  const name = `otpd_t_${randomBytes(5).toString('hex')}`;
  if (dialect === 'sqlite') {
    const dir = testTmpDir('otpd-db-');
    const url = `sqlite:${join(dir, 'otpd.sqlite')}`;
    const db = await openDatabase(url);
    await migrateToLatest(db);
    return { db, url, dialect, drop: async () => { await db.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  if (dialect === 'postgres') {
    const admin = new Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
    const db = await openDatabase(url);
    await migrateToLatest(db);
    return {
      db, url, dialect,
      drop: async () => {
        await db.close();
        const c = new Client({ connectionString: PG_ADMIN_URL });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      },
    };
  }
  const admin = await mysql.createConnection(MYSQL_ADMIN_URL);
  await admin.query(`create database ${name} character set utf8mb4 collate utf8mb4_bin`);
  await admin.end();
  const url = `${MYSQL_ADMIN_URL.replace(/\/$/, '')}/${name}`;
  const db = await openDatabase(url);
  await migrateToLatest(db);
  return {
    db, url, dialect,
    drop: async () => {
      await db.close();
      const c = await mysql.createConnection(MYSQL_ADMIN_URL);
      await c.query(`drop database if exists ${name}`);
      await c.end();
    },
  };
}

/** The dialects to run repository tests on. PostgreSQL/MariaDB must be reachable in CI. */
export async function availableDialects(): Promise<{ dialect: DialectName; skip: string | false }[]> {
  const out: { dialect: DialectName; skip: string | false }[] = [{ dialect: 'sqlite', skip: false }];
  out.push({ dialect: 'postgres', skip: await reachable('postgres') });
  out.push({ dialect: 'mysql', skip: await reachable('mysql') });
  return out;
}

async function reachable(dialect: 'postgres' | 'mysql'): Promise<string | false> {
  try {
    if (dialect === 'postgres') {
      const c = new Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
      await c.connect();
      await c.end();
    } else {
      const c = await mysql.createConnection({ uri: MYSQL_ADMIN_URL, connectTimeout: 2000 });
      await c.end();
    }
    return false;
  } catch (e) {
    const msg = `${dialect} not reachable (${(e as Error).message}); start it (see README, Development)`;
    if (inCI) throw new Error(`CI must not skip: ${msg}`);
    return msg;
  }
}
