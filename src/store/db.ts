import { Kysely, MysqlDialect, PostgresDialect, sql, type CompiledQuery, type QueryResult } from 'kysely';
import { GroupCommitSqliteDialect, type GroupCommitStats } from './sqlite-group.ts';
import { runDirectly } from './prepared.ts';

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
  /**
   * PostgreSQL and MariaDB: runs `work` with no query time limit (migrations, which may rewrite
   * a large table). Everything else runs under `queryTimeoutMs` (openDatabase). @default none
   */
  withoutQueryTimeout?: <T>(work: () => Promise<T>) => Promise<T>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * PostgreSQL and MariaDB: a query that has not answered after this long fails as an outage
   * (ERR2008) and its connection is closed, never reused: a database host that vanished without
   * closing its sockets, or a commit waiting for an unreachable synchronous standby, holds a
   * request this long per query at most. 0 = no limit. @default 3000
   */
  queryTimeoutMs?: number;
}

/** What a query past its time limit fails with: an outage to isDatabaseUnavailable (ETIMEDOUT). */
export class QueryTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`the database did not answer within ${ms} ms; the connection was closed`);
  }
}

/** The time limit a pool's queries run under, switched off around `withoutQueryTimeout`. */
class QueryLimit {
  private unbounded = 0;
  constructor(private readonly ms: number) {}
  get current(): number {
    return this.unbounded > 0 ? 0 : this.ms;
  }
  async without<T>(work: () => Promise<T>): Promise<T> {
    this.unbounded++;
    try {
      return await work();
    } finally {
      this.unbounded--;
    }
  }
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
export async function openDatabase(url: string, opts: OpenOptions = {}): Promise<Db> {
  const limit = new QueryLimit(opts.queryTimeoutMs ?? 3000);
  if (url.startsWith('sqlite:')) return openSqlite(url.slice('sqlite:'.length));
  if (/^postgres(ql)?:\/\//.test(url)) return openPostgres(url, limit);
  if (/^(mysql|mariadb):\/\//.test(url)) return openMysql(url, limit);
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
  // OFF: SQLite syncs nothing itself (NORMAL would still sync the WAL's header on the event loop
  // each time the WAL starts afresh). The driver syncs instead, off the event loop: the WAL after
  // every commit, before any write (or explicit transaction) resolves, and the database file after
  // each of its checkpoints, before the WAL may start afresh (store/sqlite-group.ts).
  database.pragma('synchronous = OFF');
  const sync = database.pragma('synchronous', { simple: true });
  if (Number(sync) !== 0) throw new Error(`SQLite synchronous is ${sync}, expected 0 (OFF, with the WAL and the checkpoints synced by the driver)`);
  const dialect = new GroupCommitSqliteDialect(database, memory ? undefined : { path, walPath: `${path}-wal`, openCheckpointer: () => new SQLite(path) });
  const kysely = new Kysely<Database>({ dialect });
  runDirectly(kysely, (q) => dialect.driver.executeDirect(q));
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

async function openPostgres(url: string, limit: QueryLimit): Promise<Db> {
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
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    limitPgQueries(client, limit);
  });
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  await sql`select 1`.execute(kysely);
  const stats = (): DbStats => ({ pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: POOL_MAX } });
  return {
    kysely, dialect: 'postgres', safeUrl: redactUrl(url), stats, unitOfWork: (work) => work(), withoutQueryTimeout: (work) => limit.without(work), close: () => kysely.destroy(),
  };
}

/**
 * A query of this client that has not answered within the limit ends its socket: the query (and
 * any queued behind it) fails with QueryTimeoutError, the client is no longer queryable, and the
 * pool discards it on release. No cancel is sent: cancelling a commit that waits for a
 * synchronous standby would leave it committed on the primary alone.
 */
function limitPgQueries(client: import('pg').PoolClient, limit: QueryLimit): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    const ms = limit.current;
    if (ms <= 0 || !(result instanceof Promise)) return result;
    const timer = setTimeout(() => {
      const stream = (client as unknown as { connection?: { stream?: { destroy(e: Error): void } } }).connection?.stream;
      stream?.destroy(new QueryTimeoutError(ms));
    }, ms);
    return result.finally(() => clearTimeout(timer));
  };
}

async function openMysql(url: string, limit: QueryLimit): Promise<Db> {
  const mysql = await import('mysql2');
  const pool = mysql.createPool({
    uri: url.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: POOL_MAX,
    connectTimeout: 5000,
    supportBigNumbers: true,
    bigNumberStrings: false,
    timezone: 'Z',
  });
  pool.on('connection', (connection) => limitMysqlQueries(connection, limit));
  const kysely = new Kysely<Database>({ dialect: new MysqlDialect({ pool }) });
  await sql`select 1`.execute(kysely);
  return {
    kysely, dialect: 'mysql', safeUrl: redactUrl(url), stats: () => ({ pool: mysqlPoolStats(pool) }), unitOfWork: (work) => work(),
    withoutQueryTimeout: (work) => limit.without(work), close: () => kysely.destroy(),
  };
}

/**
 * As limitPgQueries for mysql2's callback API (what Kysely's MysqlDialect calls): past the limit
 * the connection is destroyed (out of the pool, never reused) and the query's callback gets
 * QueryTimeoutError; the driver's own later callback is dropped.
 */
function limitMysqlQueries(connection: { query: (...args: any[]) => unknown; destroy(): void }, limit: QueryLimit): void {
  const query = connection.query.bind(connection);
  connection.query = (...args: any[]) => {
    const ms = limit.current;
    const last = args.length - 1;
    if (ms <= 0 || typeof args[last] !== 'function') return query(...args);
    const callback = args[last] as (err: unknown, ...rest: unknown[]) => void;
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      connection.destroy();
      callback(new QueryTimeoutError(ms));
    }, ms);
    args[last] = (err: unknown, ...rest: unknown[]) => {
      clearTimeout(timer);
      if (done) return;
      done = true;
      callback(err, ...rest);
    };
    return query(...args);
  };
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
