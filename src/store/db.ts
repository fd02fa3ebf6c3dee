import { Kysely, MysqlDialect, PostgresDialect, sql, type CompiledQuery, type QueryResult } from 'kysely';
import { GroupCommitSqliteDialect, type GroupCommitStats } from './sqlite-group.ts';

export { outsideUnitOfWork } from './sqlite-group.ts';
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Database } from './schema.ts';

export type DialectName = 'sqlite' | 'postgres' | 'mysql';

export interface Db {
  kysely: Kysely<Database>;
  dialect: DialectName;
  /** URL with any password removed, safe for logs. */
  safeUrl: string;
  /** What the connections are doing, for /metrics: the pool (PostgreSQL, MariaDB) or SQLite's group commit. */
  stats(): DbStats;
  /**
   * Runs one request's work and settles when every write it made is durable. On SQLite its
   * writes then share one commit wait at the end instead of one per round of writes
   * (store/sqlite-group.ts); PostgreSQL and MariaDB commit each statement as it runs.
   */
  unitOfWork<T>(work: () => Promise<T>): Promise<T>;
  /**
   * SQLite only: runs `work`'s statements synchronously in the open group commit, with
   * nothing in between and without an explicit transaction (store/sqlite-group.ts). @default none
   */
  atomically?: <T>(work: (exec: (q: CompiledQuery) => QueryResult<any>) => T) => Promise<{ value: T; committed: Promise<void> }>;
  close(): Promise<void>;
}

export interface PoolStats {
  /** Connections open, in use or idle. */
  total: number;
  idle: number;
  /** Queries waiting for a connection. */
  waiting: number;
  /** The pool's size limit. */
  max: number;
}

export interface DbStats {
  pool?: PoolStats;
  sqlite?: GroupCommitStats;
}

/** The pool size of PostgreSQL and MariaDB. */
const POOL_MAX = 10;

/** Removes the password from a database URL so it can be logged. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

/**
 * Opens a database by URL: `sqlite:<path>` (or `sqlite::memory:`), `postgres://…`,
 * `mysql://…` / `mariadb://…`. SQLite runs in WAL mode, asserted here, and a write resolves
 * only after the WAL is fsynced (store/sqlite-group.ts): a success is answered only after its
 * write is durable.
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
  // NORMAL: COMMIT writes the WAL without an fsync; the driver fsyncs the WAL file itself,
  // off the event loop, before any write (or explicit transaction) resolves
  database.pragma('synchronous = NORMAL');
  const sync = database.pragma('synchronous', { simple: true });
  if (Number(sync) !== 1) throw new Error(`SQLite synchronous is ${sync}, expected 1 (NORMAL, with the WAL fsynced by the driver)`);
  const dialect = new GroupCommitSqliteDialect(database, memory ? undefined : `${path}-wal`);
  const kysely = new Kysely<Database>({ dialect });
  return { kysely, dialect: 'sqlite', safeUrl: `sqlite:${path}`, stats: () => ({ sqlite: dialect.stats() }), unitOfWork: (work) => dialect.driver.unitOfWork(work),
    atomically: (work) => dialect.driver.atomically(work),
    close: () => kysely.destroy() };
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
  const pool = new pg.default.Pool({ connectionString: url, max: POOL_MAX, connectionTimeoutMillis: 5000 });
  // A connection dropped by the server (restart, failover) must not crash the process: an idle
  // one is reported on the pool, and the pool replaces it on the next query; one that is checked
  // out (inside a transaction, between its queries) has no listener of the pool's and emitted an
  // unhandled 'error' that killed otpd (test/faults/database-restart.test.ts). Its query fails on
  // its own, and the pool discards the broken client when it is released.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  await sql`select 1`.execute(kysely);
  const stats = (): DbStats => ({ pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: POOL_MAX } });
  return { kysely, dialect: 'postgres', safeUrl: redactUrl(url), stats, unitOfWork: (work) => work(), close: () => kysely.destroy() };
}

async function openMysql(url: string): Promise<Db> {
  const mysql = await import('mysql2');
  const pool = mysql.createPool({
    uri: url.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: POOL_MAX,
    connectTimeout: 5000,
    supportBigNumbers: true,
    bigNumberStrings: false,
    timezone: 'Z',
  });
  const kysely = new Kysely<Database>({ dialect: new MysqlDialect({ pool }) });
  await sql`select 1`.execute(kysely);
  return { kysely, dialect: 'mysql', safeUrl: redactUrl(url), stats: () => ({ pool: mysqlPoolStats(pool) }), unitOfWork: (work) => work(), close: () => kysely.destroy() };
}

/**
 * mysql2 has no public pool counters: its pool keeps queues of all connections, free ones and
 * waiting callbacks (`_allConnections`, `_freeConnections`, `_connectionQueue`, each with a
 * `length`). Read when present; a mysql2 without them reports no pool (test/core/metrics.test.ts
 * notices on MariaDB).
 */
function mysqlPoolStats(pool: object): PoolStats | undefined {
  const p = pool as { _allConnections?: { length?: unknown }; _freeConnections?: { length?: unknown }; _connectionQueue?: { length?: unknown } };
  const [total, idle, waiting] = [p._allConnections?.length, p._freeConnections?.length, p._connectionQueue?.length];
  if (typeof total !== 'number' || typeof idle !== 'number' || typeof waiting !== 'number') return undefined;
  return { total, idle, waiting, max: POOL_MAX };
}
