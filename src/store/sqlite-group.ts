import { AsyncLocalStorage } from 'node:async_hooks';
import { close, fdatasync, openSync } from 'node:fs';
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
 * paying one each. SQLite runs with synchronous=OFF (it syncs nothing itself) and this driver
 * fsyncs (fdatasync) the WAL on the thread pool, so the event loop does not stop for the disk; an explicit transaction's commit resolves after that fsync too. Explicit transactions (`db.transaction()`) first commit the open group and then
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
 * Checkpoints (copying the WAL's pages into the database file) are this driver's too, so that
 * no fsync runs on the event loop: SQLite's automatic checkpoint is off, and every
 * {@link CHECKPOINT_COMMITS} commits the driver holds new writes (reads go on), fsyncs the WAL on
 * the thread pool, copies it into the database file on a second connection that never syncs
 * (`synchronous=OFF`), fsyncs the database file on the thread pool, and lets writes go on. The
 * first write after that starts the WAL afresh; it could not while the copied pages were not yet
 * durable in the database file, so a crash at any point finds every commit in the WAL or in the
 * synced file. Should that fsync fail, the file's state is unknown: every later write fails
 * (SQLITE_IOERR_FSYNC, an outage for the callers) and the WAL is never restarted.
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
  /**
   * @param files the database file and its `-wal` file (fsynced after each commit), with a second
   *   connection to the same file for checkpoints; @default none (in memory: nothing is synced)
   */
  constructor(database: BetterSqlite3.Database, files?: DurableFiles) {
    this.driver = new GroupCommitDriver(database, files);
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

/** A file database: its paths and a connection of its own for the driver's checkpoints. */
export interface DurableFiles {
  path: string;
  walPath: string;
  /** Opens another connection to `path` (it gets synchronous=OFF and runs only checkpoints). */
  openCheckpointer: () => BetterSqlite3.Database;
}

/** Commits between two checkpoints: 450–2,500 WAL frames under the bench's load, copied in 1–4 ms on the event loop. */
export const CHECKPOINT_COMMITS = 32;

/** For /metrics: the queue behind explicit transactions and the commits of grouped writes. */
export interface GroupCommitStats {
  /** Statements waiting for an explicit transaction to end. */
  waitingStatements: number;
  /** Group COMMITs that succeeded. */
  commits: number;
  /** Writes those commits made durable. */
  groupedWrites: number;
  /** Checkpoints that copied WAL frames into the database file and synced it. */
  checkpoints: number;
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
  /** The commit count when the running fsync started: it makes every commit up to there durable. */
  private syncRunningFrom = -1;
  private syncQueued: Promise<void> | undefined;
  /** Commits (groups and explicit transactions) so far, counted right after each COMMIT. */
  private commitSeq = 0;
  private readonly walPath: string | undefined;

  /** Held while a checkpoint runs: writes (not reads) wait for it. */
  private writeHold: Promise<void> | undefined;
  private checkpointer: BetterSqlite3.Database | undefined;
  private checkpointing: Promise<void> | undefined;
  private commitsSinceCheckpoint = 0;
  private checkpoints = 0;
  private dbFd: number | undefined;
  /** Set when the database file's fsync after a checkpoint failed: every later write fails with it. */
  private broken: Error | undefined;

  constructor(private readonly db: BetterSqlite3.Database, private readonly files?: DurableFiles) {
    this.walPath = files?.walPath;
    if (files) {
      // the driver checkpoints; SQLite's own checkpoint would fsync on the event loop
      db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = files.openCheckpointer();
      this.checkpointer.pragma('wal_autocheckpoint = 0');
      // its copies are synced by the driver (the WAL before, the database file after)
      this.checkpointer.pragma('synchronous = OFF');
    }
  }

  async init(): Promise<void> {}

  stats(): GroupCommitStats {
    return { waitingStatements: this.waiting, commits: this.commits, groupedWrites: this.groupedWrites, checkpoints: this.checkpoints };
  }

  /**
   * What a write must wait for: an explicit transaction or a checkpoint. Callers loop on it
   * themselves (`for (let b = this.blocker(); b; b = this.blocker()) await this.queued(b)`) and
   * act in the same synchronous step as the last look, so that nothing takes the connection in
   * between (an async helper that waited would add a turn between the look and the action).
   */
  private blocker(): Promise<void> | undefined {
    return this.exclusive ?? this.writeHold;
  }

  /**
   * One checkpoint (see the class comment): writes wait from the start to the end, reads do not.
   * The WAL's frames are durable before any is copied, so a crash mid-copy never leaves the
   * database file with part of a commit the WAL lost.
   */
  private async checkpoint(): Promise<void> {
    if (this.writeHold) return;
    // held from here, so that a stream of explicit transactions cannot keep it waiting for ever
    let release!: () => void;
    this.writeHold = new Promise((r) => (release = r));
    try {
      while (this.exclusive) await this.queued(this.exclusive);
      if (this.closed) return;
      // the open group commits now; its writers resolve after the WAL fsync below
      this.flush();
      await this.syncWal();
      if (this.closed) return;
      const [result] = this.checkpointer!.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      this.commitsSinceCheckpoint = 0;
      if (!result || result.checkpointed <= 0) return;
      await new Promise<void>((resolve, reject) => {
        this.dbFd ??= openSync(this.files!.path, 'r+');
        fdatasync(this.dbFd, (e) => {
          if (!e) return resolve();
          // the copied pages may be lost: the WAL must keep them, so no write may restart it
          this.broken = Object.assign(new Error(`fsync of the SQLite database file failed after a checkpoint (${e.code}); restart otpd`), { code: 'SQLITE_IOERR_FSYNC', cause: e });
          reject(this.broken);
        });
      });
      this.checkpoints++;
    } catch {
      // WAL fsync failed (its group's writers fail with it) or the copy could not run (disk
      // full, another process's checkpoint): the WAL keeps everything; the next one tries again
    } finally {
      this.writeHold = undefined;
      release();
    }
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
   * fsync runs waits for the next one, which starts when that ends (one at a time, coalesced);
   * the running one serves whoever asks when no commit came after it started (a checkpoint
   * right after the commit that triggered it).
   */
  private syncWal(): Promise<void> {
    if (!this.walPath) return Promise.resolve();
    if (this.syncRunning && this.syncRunningFrom === this.commitSeq) return this.syncRunning;
    if (!this.syncRunning) {
      this.syncRunningFrom = this.commitSeq;
      this.syncRunning = new Promise<void>((resolve, reject) => {
        this.walFd ??= openSync(this.walPath!, 'r+');
        fdatasync(this.walFd, (e) => (e ? reject(e) : resolve()));
      }).finally(() => (this.syncRunning = undefined));
      return this.syncRunning;
    }
    this.syncQueued ??= this.syncRunning.catch(() => undefined).then(() => {
      this.syncQueued = undefined;
      return this.syncWal();
    });
    return this.syncQueued;
  }

  /** A plain (non-transaction) connection for queries that come past Kysely's executor (store/prepared.ts). */
  private readonly shared = new GroupConnection(this);

  /** Runs a compiled query outside any explicit transaction, as Kysely would through a fresh connection. */
  executeDirect(compiled: CompiledQuery): Promise<QueryResult<any>> {
    if (this.closed) return Promise.reject(new Error('driver has already been destroyed'));
    return this.execute(this.shared, compiled);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new GroupConnection(this);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    for (let b = this.blocker(); b; b = this.blocker()) await this.queued(b);
    if (this.broken) throw this.broken;
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
      this.commitSeq++;
    } catch (e) {
      // A failed COMMIT leaves the transaction rolled back by SQLite (SQLITE_FULL) or still open
      // (SQLITE_BUSY): end it here, while this connection still holds it. Kysely's
      // rollbackTransaction comes later, when the open transaction may already be a group's.
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.endExclusive(connection);
    }
    const synced = this.syncWal();
    this.committed();
    await synced;
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
    while (this.checkpointing || this.syncRunning || this.syncQueued) await Promise.allSettled([this.checkpointing, this.syncRunning, this.syncQueued]);
    if (this.walFd !== undefined) close(this.walFd, () => undefined);
    if (this.dbFd !== undefined) close(this.dbFd, () => undefined);
    this.checkpointer?.close();
    // the last connection's close checkpoints the WAL into the file and removes it: synced by
    // SQLite itself (NORMAL), unless a failed fsync left the file's state unknown
    if (this.broken) return;
    if (this.files) this.db.pragma('synchronous = NORMAL');
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
    if (this.writeHold || this.broken) {
      for (let b = this.blocker(); b; b = this.blocker()) await this.queued(b);
      if (this.broken) throw this.broken;
      if (this.closed) throw new Error('database is closed');
    }
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
    for (let b = this.blocker(); b; b = this.blocker()) await this.queued(b);
    if (this.broken) throw this.broken;
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
      this.commitSeq++;
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
    this.committed();
  }

  /** Counts a commit (a group's or an explicit transaction's) and starts a checkpoint every {@link CHECKPOINT_COMMITS}. */
  private committed(): void {
    if (this.checkpointer && ++this.commitsSinceCheckpoint >= CHECKPOINT_COMMITS && !this.checkpointing && !this.closed) {
      this.checkpointing = this.checkpoint().finally(() => (this.checkpointing = undefined));
    }
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
