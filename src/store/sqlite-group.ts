import { AsyncLocalStorage } from 'node:async_hooks';
import { close, fsync, openSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler,
  type DatabaseConnection, type Dialect, type Driver, type Kysely, type QueryResult,
} from 'kysely';

/**
 * SQLite with group commit. Writes outside an explicit transaction join one
 * transaction per event-loop turn (`BEGIN IMMEDIATE` … `COMMIT` in setImmediate), and each
 * write's promise resolves only after that COMMIT and an fsync of the WAL file: a caller never
 * answers before its write is durable, but concurrent requests share one fsync instead of
 * paying one each. SQLite runs with synchronous=NORMAL (its COMMIT writes the WAL without
 * syncing it) and this driver fsyncs the WAL itself on the thread pool, so the event loop does
 * not stop for the disk; an explicit transaction's commit resolves after that fsync too. Explicit transactions (`db.transaction()`) first commit the open group and then
 * run alone. Prepared statements are cached by SQL text.
 *
 * SQLite has one connection here, and better-sqlite3 runs each statement synchronously, so
 * statements never interleave; conditional writes (`UPDATE … WHERE counter <= ?`) keep
 * their meaning inside a group. A read on this connection sees the open group's writes a
 * moment before their COMMIT (one event-loop turn); whoever wrote them answers only after
 * it. Should a COMMIT fail, every write of the group fails with it. So does every write of the
 * group when one of its statements fails in a way that makes SQLite roll the whole transaction
 * back by itself (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, SQLITE_BUSY): the group ends there,
 * and the statements after it start a new one instead of running outside any transaction (each
 * committed on its own while its caller was told the group failed).
 *
 * Inside {@link GroupCommitDriver.unitOfWork} (one request) a write resolves as soon as it ran,
 * with its result, and the unit waits once, at its end, for the commits of all its writes:
 * SQLite commits the groups of its one connection in order, so a request with several rounds
 * of writes pays one commit wait instead of one per round, and is still answered only when
 * every write it made is durable.
 */
export class GroupCommitSqliteDialect implements Dialect {
  /** The driver, also for the store's synchronous group access (audit rows, see {@link GroupCommitDriver.atomically}). */
  readonly driver: GroupCommitDriver;
  /** @param walPath the database's `-wal` file, fsynced after each commit; @default none (in memory) */
  constructor(database: BetterSqlite3.Database, walPath?: string) {
    this.driver = new GroupCommitDriver(database, walPath);
  }
  createAdapter() {
    return new SqliteAdapter();
  }
  createDriver(): Driver {
    return this.driver;
  }
  /** The group commit's counts since the database was opened. */
  stats(): GroupCommitStats {
    return this.driver.stats();
  }
  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }
  createIntrospector(db: Kysely<any>) {
    return new SqliteIntrospector(db);
  }
}

/** For /metrics: the queue behind explicit transactions and the commits of grouped writes. */
export interface GroupCommitStats {
  /** Statements waiting for an explicit transaction to end. */
  waitingStatements: number;
  /** Group COMMITs that succeeded. */
  commits: number;
  /** Writes those commits made durable. */
  groupedWrites: number;
}

interface Group {
  done: Promise<void>;
  /** Writes that joined the group. */
  writes: number;
  /** Run, in order, right before the COMMIT ({@link GroupCommitDriver.atomically}); `fail` settles one that will not run. */
  beforeCommit: { run: () => void; fail: (e: Error) => void }[];
  resolve: () => void;
  reject: (e: Error) => void;
}

const STATEMENT_CACHE = 500;

/** The commits a unit of work waits for at its end; writes join it only while it is open. */
interface UnitOfWork {
  open: boolean;
  commits: Set<Promise<void>>;
}

const units = new AsyncLocalStorage<UnitOfWork>();

/**
 * Runs `fn` outside any unit of work, so each of its writes waits for its own commit again:
 * for work a request starts that must have a write durable before an effect outside the
 * database (the dispatcher records a delivery attempt before it calls the provider).
 */
export function outsideUnitOfWork<T>(fn: () => T): T {
  return units.exit(fn);
}

export class GroupCommitDriver implements Driver {
  private group: Group | undefined;
  /** Held by an explicit transaction; plain queries wait for it. */
  private exclusive: Promise<void> | undefined;
  private releaseExclusive: (() => void) | undefined;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private closed = false;

  private waiting = 0;
  private commits = 0;
  private groupedWrites = 0;
  private walFd: number | undefined;
  private syncRunning: Promise<void> | undefined;
  private syncQueued: Promise<void> | undefined;

  constructor(private readonly db: BetterSqlite3.Database, private readonly walPath?: string) {}

  async init(): Promise<void> {}

  stats(): GroupCommitStats {
    return { waitingStatements: this.waiting, commits: this.commits, groupedWrites: this.groupedWrites };
  }

  /**
   * Waits for the explicit transaction holding the connection, counted as queued. Callers
   * loop on `this.exclusive` themselves: the check and what follows it stay in one
   * synchronous step, so two waiters never both take the connection.
   */
  private async queued(exclusive: Promise<void>): Promise<void> {
    this.waiting++;
    try {
      await exclusive;
    } finally {
      this.waiting--;
    }
  }

  /**
   * Makes every commit so far durable: fsync of the WAL file on the thread pool, so the event
   * loop serves other requests (and the next group commits) meanwhile. A commit made while an
   * fsync runs waits for the next one, which starts when that ends (one at a time, coalesced).
   */
  private syncWal(): Promise<void> {
    if (!this.walPath) return Promise.resolve();
    if (!this.syncRunning) {
      this.syncRunning = new Promise<void>((resolve, reject) => {
        this.walFd ??= openSync(this.walPath!, 'r+');
        fsync(this.walFd, (e) => (e ? reject(e) : resolve()));
      }).finally(() => (this.syncRunning = undefined));
      return this.syncRunning;
    }
    this.syncQueued ??= this.syncRunning.catch(() => undefined).then(() => {
      this.syncQueued = undefined;
      return this.syncWal();
    });
    return this.syncQueued;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new GroupConnection(this);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    while (this.exclusive) await this.queued(this.exclusive);
    this.exclusive = new Promise((r) => (this.releaseExclusive = r));
    (connection as GroupConnection).owner = true;
    this.flush();
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      // Kysely calls rollbackTransaction only for a transaction that began: release the hold here,
      // or every later statement would wait for it
      this.endExclusive(connection);
      throw e;
    }
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      this.db.exec('COMMIT');
    } catch (e) {
      // A failed COMMIT leaves the transaction rolled back by SQLite (SQLITE_FULL) or still open
      // (SQLITE_BUSY): end it here, while this connection still holds it. Kysely's
      // rollbackTransaction comes later, when the open transaction may already be a group's.
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.endExclusive(connection);
    }
    await this.syncWal();
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    // not after a failed COMMIT: that ended the transaction, and what is open now is not this one's
    if (!(connection as GroupConnection).owner) return;
    try {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    } finally {
      this.endExclusive(connection);
    }
  }

  private endExclusive(connection: DatabaseConnection): void {
    (connection as GroupConnection).owner = false;
    const release = this.releaseExclusive;
    this.exclusive = undefined;
    this.releaseExclusive = undefined;
    release?.();
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    this.flush();
    this.closed = true;
    while (this.syncRunning || this.syncQueued) await Promise.allSettled([this.syncRunning, this.syncQueued]);
    if (this.walFd !== undefined) close(this.walFd, () => undefined);
    this.db.close();
  }

  prepare(sql: string): BetterSqlite3.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (this.statements.size >= STATEMENT_CACHE) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  async execute(conn: GroupConnection, compiled: CompiledQuery): Promise<QueryResult<any>> {
    if (!conn.owner) while (this.exclusive) await this.queued(this.exclusive);
    if (this.closed) throw new Error('database is closed');
    const stmt = this.prepare(compiled.sql);
    const params = compiled.parameters as unknown[];
    if (conn.owner) return run(stmt, params);
    if (stmt.readonly) return this.runInGroup(stmt, params);
    const group = this.openGroup();
    const result = this.runInGroup(stmt, params);
    group.writes++;
    const unit = units.getStore();
    if (unit?.open) unit.commits.add(group.done);
    else await group.done;
    return result;
  }

  /**
   * Runs a statement on the connection, in the open group's transaction when there is one. When
   * the statement failed and took that transaction with it (SQLite rolled it back), the group
   * ends: its writers fail, and the next write opens a new group.
   */
  private runInGroup(stmt: BetterSqlite3.Statement, params: unknown[]): QueryResult<any> {
    try {
      return run(stmt, params);
    } catch (e) {
      if (this.group && !this.db.inTransaction) this.abandon(this.group, e as Error);
      throw e;
    }
  }

  /** Fails a group whose transaction is gone: its writers, and the atomically work not yet run. */
  private abandon(group: Group, e: Error): void {
    if (this.group === group) this.group = undefined;
    for (const work of group.beforeCommit.splice(0)) work.fail(e);
    group.reject(e);
  }

  /**
   * Runs `work` with deferred durability: its writes resolve when they ran, and the returned
   * promise settles only after every group holding one of them committed (rejecting when one
   * failed: those writes are rolled back). Writes that outlive `work` (something it started
   * and did not wait for) wait for their own commit as usual.
   */
  async unitOfWork<T>(work: () => Promise<T>): Promise<T> {
    const unit: UnitOfWork = { open: true, commits: new Set() };
    const outcome = await units.run(unit, work).then((value) => ({ value }), (error: unknown) => ({ error }));
    unit.open = false;
    const failed = (await Promise.allSettled(unit.commits)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // the work's own error wins; otherwise a failed commit fails the unit
    if ('error' in outcome) throw outcome.error;
    if (failed) throw failed.reason;
    return outcome.value;
  }

  /**
   * Runs `work` synchronously in the open group (opening one) right before its COMMIT: nothing
   * else runs between its statements, they commit with the group's other writes, and no explicit
   * transaction makes plain queries wait. An error inside rolls back only work's statements (a
   * savepoint). Waits for a running explicit transaction first. Resolves, once work ran, with its
   * value and the group's commit.
   */
  async atomically<T>(work: (exec: (q: CompiledQuery) => QueryResult<any>) => T): Promise<{ value: T; committed: Promise<void> }> {
    while (this.exclusive) await this.queued(this.exclusive);
    // Kysely's own words: this call does not go through Kysely, which says so for every other query
    if (this.closed) throw new Error('driver has already been destroyed');
    const group = this.openGroup();
    return new Promise((resolve, reject) => {
      group.beforeCommit.push({
        run: () => {
          this.db.exec('SAVEPOINT atomically');
          try {
            const value = work((q) => run(this.prepare(q.sql), q.parameters as unknown[]));
            this.db.exec('RELEASE atomically');
            resolve({ value, committed: group.done });
          } catch (e) {
            reject(e as Error);
            // SQLite rolled the whole transaction back (disk full): the group is lost, flush fails it
            if (!this.db.inTransaction) throw e;
            this.db.exec('ROLLBACK TO atomically');
            this.db.exec('RELEASE atomically');
          }
        },
        fail: reject,
      });
    });
  }

  private openGroup(): Group {
    if (this.group) return this.group;
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // a group whose only writer gave up (atomically's work failed) may fail unobserved
    done.catch(() => undefined);
    this.db.exec('BEGIN IMMEDIATE');
    this.group = { done, resolve, reject, beforeCommit: [], writes: 0 };
    setImmediate(() => this.flush());
    return this.group;
  }

  /** Commits the open group (if any) and settles its writers. */
  private flush(): void {
    const group = this.group;
    if (!group) return;
    this.group = undefined;
    try {
      for (const work of group.beforeCommit) work.run();
      this.db.exec('COMMIT');
      this.commits++;
      this.groupedWrites += group.writes;
    } catch (e) {
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        // flush runs in setImmediate: a throw here would end the process; the writers fail below
      }
      // the work that ran settled already (fail is then a no-op); the rest never will otherwise
      this.abandon(group, e as Error);
      return;
    }
    this.syncWal().then(group.resolve, group.reject);
  }
}

function run(stmt: BetterSqlite3.Statement, params: unknown[]): QueryResult<any> {
  if (stmt.reader) return { rows: stmt.all(params) as any[] };
  const { changes, lastInsertRowid } = stmt.run(params);
  return {
    numAffectedRows: changes !== undefined && changes !== null ? BigInt(changes) : undefined,
    insertId: lastInsertRowid !== undefined && lastInsertRowid !== null ? BigInt(lastInsertRowid) : undefined,
    rows: [],
  };
}

class GroupConnection implements DatabaseConnection {
  owner = false;
  constructor(private readonly driver: GroupCommitDriver) {}
  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    return this.driver.execute(this, compiled);
  }
  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported by the SQLite group-commit driver');
  }
}
