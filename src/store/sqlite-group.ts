import type BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler,
  type DatabaseConnection, type Dialect, type Driver, type Kysely, type QueryResult,
} from 'kysely';

/**
 * SQLite with group commit. Writes outside an explicit transaction join one
 * transaction per event-loop turn (`BEGIN IMMEDIATE` … `COMMIT` in setImmediate), and each
 * write's promise resolves only after that COMMIT: a caller never answers before its write
 * is durable (synchronous=FULL), but concurrent requests share one fsync instead of paying
 * one each. Explicit transactions (`db.transaction()`) first commit the open group and then
 * run alone. Prepared statements are cached by SQL text.
 *
 * SQLite has one connection here, and better-sqlite3 runs each statement synchronously, so
 * statements never interleave; conditional writes (`UPDATE … WHERE counter <= ?`) keep
 * their meaning inside a group. A read on this connection sees the open group's writes a
 * moment before their COMMIT (one event-loop turn); whoever wrote them answers only after
 * it. Should a COMMIT fail, every write of the group fails with it.
 */
export class GroupCommitSqliteDialect implements Dialect {
  private driver: GroupCommitDriver | undefined;
  constructor(private readonly database: BetterSqlite3.Database) {}
  createAdapter() {
    return new SqliteAdapter();
  }
  createDriver(): Driver {
    return (this.driver = new GroupCommitDriver(this.database));
  }
  /** The group commit's counts since the database was opened (zeros before the first query). */
  stats(): GroupCommitStats {
    return this.driver?.stats() ?? { waitingStatements: 0, commits: 0, groupedWrites: 0 };
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
  resolve: () => void;
  reject: (e: Error) => void;
}

const STATEMENT_CACHE = 500;

class GroupCommitDriver implements Driver {
  private group: Group | undefined;
  /** Held by an explicit transaction; plain queries wait for it. */
  private exclusive: Promise<void> | undefined;
  private releaseExclusive: (() => void) | undefined;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private closed = false;
  private waiting = 0;
  private commits = 0;
  private groupedWrites = 0;

  constructor(private readonly db: BetterSqlite3.Database) {}

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

  async acquireConnection(): Promise<DatabaseConnection> {
    return new GroupConnection(this);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    while (this.exclusive) await this.queued(this.exclusive);
    this.exclusive = new Promise((r) => (this.releaseExclusive = r));
    (connection as GroupConnection).owner = true;
    this.flush();
    this.db.exec('BEGIN IMMEDIATE');
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      this.db.exec('COMMIT');
    } finally {
      this.endExclusive(connection);
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
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
    if (conn.owner || stmt.readonly) return run(stmt, params);
    const group = this.openGroup();
    const result = run(stmt, params);
    group.writes++;
    await group.done;
    return result;
  }

  private openGroup(): Group {
    if (this.group) return this.group;
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.db.exec('BEGIN IMMEDIATE');
    this.group = { done, resolve, reject, writes: 0 };
    setImmediate(() => this.flush());
    return this.group;
  }

  /** Commits the open group (if any) and settles its writers. */
  private flush(): void {
    const group = this.group;
    if (!group) return;
    this.group = undefined;
    try {
      this.db.exec('COMMIT');
      this.commits++;
      this.groupedWrites += group.writes;
      group.resolve();
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      group.reject(e as Error);
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
