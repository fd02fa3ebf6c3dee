import { Kysely, MysqlDialect, PostgresDialect, sql } from 'kysely';
import { GroupCommitSqliteDialect } from './sqlite-group.ts';
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Database } from './schema.ts';

export type DialectName = 'sqlite' | 'postgres' | 'mysql';

export interface Db {
  kysely: Kysely<Database>;
  dialect: DialectName;
  /** URL with any password removed, safe for logs. */
  safeUrl: string;
  close(): Promise<void>;
}

/** Removes the password from a database URL so it can be logged. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

/**
 * Opens a database by URL: `sqlite:<path>` (or `sqlite::memory:`), `postgres://…`,
 * `mysql://…` / `mariadb://…`. SQLite runs in WAL mode with `synchronous=FULL`,
 * which is asserted here: a success is answered only after its write is durable.
 */
export async function openDatabase(url: string): Promise<Db> {
  if (url.startsWith('sqlite:')) return openSqlite(url.slice('sqlite:'.length));
  if (/^postgres(ql)?:\/\//.test(url)) return openPostgres(url);
  if (/^(mysql|mariadb):\/\//.test(url)) return openMysql(url);
  throw new Error(`unsupported database URL scheme: ${redactUrl(url)} (use sqlite:, postgres:// or mysql://)`);
}

async function openSqlite(path: string): Promise<Db> {
  const { default: SQLite } = await import('better-sqlite3');
  const memory = path === ':memory:' || path === '';
  if (!memory) createPrivateFile(path);
  const database = new SQLite(memory ? ':memory:' : path);
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  if (!memory) {
    const mode = database.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new Error(`SQLite journal_mode is ${mode}, expected wal`);
  }
  database.pragma('synchronous = FULL');
  const sync = database.pragma('synchronous', { simple: true });
  if (Number(sync) !== 2) throw new Error(`SQLite synchronous is ${sync}, expected 2 (FULL)`);
  const kysely = new Kysely<Database>({ dialect: new GroupCommitSqliteDialect(database) });
  return { kysely, dialect: 'sqlite', safeUrl: `sqlite:${path}`, close: () => kysely.destroy() };
}

/**
 * Creates the SQLite file (and any missing directories) readable by the owner only before
 * SQLite opens it: directories 0700, the file 0600. SQLite gives the -wal and -shm files the
 * mode of the database file, so they are 0600 too. An existing file keeps its mode (an operator
 * may have chosen it), with a warning when group or others can read it.
 */
function createPrivateFile(path: string): void {
  mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    if (statSync(path).mode & 0o077) process.emitWarning(`database file ${path} is readable by group/others; chmod 600 it (and its -wal/-shm files)`);
  }
}

async function openPostgres(url: string): Promise<Db> {
  const pg = await import('pg');
  // int8 (COUNT, BIGINT timestamps) as numbers; our values stay far below 2^53.
  pg.default.types.setTypeParser(20, (v: string) => Number(v));
  const pool = new pg.default.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
  // A connection dropped by the server (restart, failover) must not crash the process: an idle
  // one is reported on the pool, and the pool replaces it on the next query; one that is checked
  // out (inside a transaction, between its queries) has no listener of the pool's and emitted an
  // unhandled 'error' that killed otpd (test/faults/database-restart.test.ts). Its query fails on
  // its own, and the pool discards the broken client when it is released.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  await sql`select 1`.execute(kysely);
  return { kysely, dialect: 'postgres', safeUrl: redactUrl(url), close: () => kysely.destroy() };
}

async function openMysql(url: string): Promise<Db> {
  const mysql = await import('mysql2');
  const pool = mysql.createPool({
    uri: url.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: 10,
    connectTimeout: 5000,
    supportBigNumbers: true,
    bigNumberStrings: false,
    timezone: 'Z',
  });
  const kysely = new Kysely<Database>({ dialect: new MysqlDialect({ pool }) });
  await sql`select 1`.execute(kysely);
  return { kysely, dialect: 'mysql', safeUrl: redactUrl(url), close: () => kysely.destroy() };
}
