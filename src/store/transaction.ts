import type { CompiledQuery, Kysely, QueryResult, Transaction } from 'kysely';
import type { Db } from './db.ts';
import type { Database } from './schema.ts';

export interface TransactionOptions {
  /**
   * READ COMMITTED instead of the server's default. On MariaDB (default REPEATABLE READ) a
   * read or update of a range takes next-key locks: two transactions that look for rows of
   * neighbouring keys (a token's open challenges, a send-limit window not yet counted) lock the
   * same gap and then deadlock on each other's insert into it (InnoDB 1213). Under READ
   * COMMITTED only the rows found are locked. For transactions whose correctness rests on
   * conditional writes (affected rows checked), not on a snapshot. PostgreSQL's default is READ
   * COMMITTED already; SQLite runs one writer at a time and ignores it. @default false
   */
  readCommitted?: boolean;
  /** Runs in all, the first one included, while the database breaks the transaction off for a conflict. @default 5 */
  attempts?: number;
}

/**
 * A deadlock or a serialisation failure: the database rolled the transaction back at once and
 * it may simply run again (PostgreSQL 40P01, 40001; MariaDB 1213). Not a lock wait timeout
 * (MariaDB 1205, SQLite busy): that one has waited its bound already (innodb_lock_wait_timeout,
 * busy_timeout), and a rerun would hold the request that long again; it is answered as the
 * database being unavailable (store/unavailable.ts).
 */
export function isRetryableConflict(e: unknown): boolean {
  const err = e as { code?: string; errno?: number } | undefined;
  if (!err) return false;
  return err.code === '40P01' || err.code === '40001' || err.code === 'ER_LOCK_DEADLOCK' || err.errno === 1213;
}

/**
 * Runs `work` in one transaction and, when the database breaks it off for a deadlock or a
 * serialisation failure, runs it again after a short random pause, up to `attempts` times.
 * `work` may therefore run more than once: it must write only through `trx` and keep no
 * effect of a failed run (everything it wrote was rolled back). Any other error, and the
 * conflict of the last run, is thrown.
 */
export async function transaction<T>(db: Db, work: (trx: Transaction<Database>) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  for (let run = 1; ; run++) {
    try {
      let tx = db.kysely.transaction();
      if (opts.readCommitted && db.dialect === 'mysql') tx = tx.setIsolationLevel('read committed');
      return await tx.execute(work);
    } catch (e) {
      if (run >= attempts || !isRetryableConflict(e)) throw e;
      // apart at random, so the transactions that collided do not collide again
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * run));
    }
  }
}

/**
 * The statements of one atomic step, in order: the generator yields each compiled query and
 * receives its result, and may stop early (return) or undo everything (throw).
 */
export type Steps<T> = Generator<CompiledQuery, T, QueryResult<any>>;

/**
 * Runs `steps` all or nothing and resolves with its value once that is durable.
 *
 * SQLite: synchronously inside the open group commit (`Db.atomically`), with nothing between its
 * statements, committed with the group's other writes; no explicit transaction, which would make
 * every other query wait for it and force a commit of its own. An error thrown by `steps` rolls
 * back only its statements. PostgreSQL, MariaDB: one transaction (see {@link transaction}: rerun
 * on a deadlock, so `steps` may run more than once).
 *
 * `steps` builds its queries on the Kysely it is given and compiles them (`.compile()`).
 */
export async function atomicSteps<T>(db: Db, steps: (k: Kysely<Database>) => Steps<T>, opts: TransactionOptions = {}): Promise<T> {
  if (db.atomically) {
    const { value, committed } = await db.atomically((exec) => driveSync(exec, steps(db.kysely)));
    await committed;
    return value;
  }
  return transaction(db, (trx) => drive(trx, steps(trx)), opts);
}

/** Runs `steps` on `exec` (the database or an open transaction), one query after the other. */
export async function drive<T>(exec: Kysely<Database>, steps: Steps<T>): Promise<T> {
  let step = steps.next();
  while (!step.done) step = steps.next(await exec.executeQuery(step.value));
  return step.value;
}

/** Runs `steps` with a synchronous executor (`Db.atomically`'s), one query after the other. */
export function driveSync<T>(exec: (q: CompiledQuery) => QueryResult<any>, steps: Steps<T>): T {
  let step = steps.next();
  while (!step.done) step = steps.next(exec(step.value));
  return step.value;
}

/** Rows a write of {@link Steps} changed (inserted, updated or deleted), as a number. */
export const affected = (r: QueryResult<unknown>): number => Number(r.numAffectedRows ?? 0);
