import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from './db.ts';

/**
 * Named change counters shared by all nodes. A writer bumps the revision of
 * what it changed (`config`, `policies`, `resolvers`, …) in the same database;
 * a RevisionWatcher on every node polls and invalidates its caches.
 */
export async function bumpRevision(db: Db, name: string): Promise<void> {
  const updated = await db.kysely
    .updateTable('revisions')
    .set({ rev: sql`rev + 1` })
    .where('name', '=', name)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) {
    try {
      await db.kysely.insertInto('revisions').values({ name, rev: 1 }).execute();
    } catch {
      // a concurrent writer inserted it first
      await db.kysely.updateTable('revisions').set({ rev: sql`rev + 1` }).where('name', '=', name).execute();
    }
  }
}

export async function readRevisions(db: Db): Promise<Map<string, number>> {
  const rows = await db.kysely.selectFrom('revisions').select(['name', 'rev']).execute();
  return new Map(rows.map((r) => [r.name, Number(r.rev)]));
}

/** Polls the revisions table and calls the listeners of names whose revision moved. */
export class RevisionWatcher {
  private known = new Map<string, number>();
  private listeners = new Map<string, Set<() => void | Promise<void>>>();
  private timer: NodeJS.Timeout | undefined;
  private reloads = new Set<Promise<void>>();
  /**
   * Failed reloads by revision name (a listener threw or its promise rejected), and `poll` for
   * failed reads of the revisions table, since this process started: `/metrics` shows them.
   */
  readonly failures = new Map<string, number>();

  constructor(private readonly db: Db, private readonly intervalMs = 1000, private readonly logger?: Logger) {}

  /** A listener may return a promise: a rejection is logged and counted, the previous state stays in force. */
  on(name: string, listener: () => void | Promise<void>): void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
  }

  async start(): Promise<void> {
    this.known = await readRevisions(this.db);
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  /** poll(), with a failure logged and counted (as `poll`) instead of thrown. */
  async refresh(): Promise<void> {
    await this.poll().catch((e: unknown) => this.failed('poll', e));
  }

  /** Resolves when the reloads started so far have finished, failed or not (for tests and the CLI). */
  async settled(): Promise<void> {
    while (this.reloads.size > 0) await Promise.all([...this.reloads]);
  }

  /** Checks once now (also used after a local write, so this node sees it at once). */
  async poll(): Promise<void> {
    const now = await readRevisions(this.db);
    for (const [name, rev] of now) {
      if (this.known.get(name) !== rev) {
        this.known.set(name, rev);
        for (const l of this.listeners.get(name) ?? []) {
          const reload = this.reload(name, l).finally(() => this.reloads.delete(reload));
          this.reloads.add(reload);
        }
      }
    }
  }

  private async reload(name: string, listener: () => void | Promise<void>): Promise<void> {
    try {
      await listener();
    } catch (e) {
      this.failed(name, e);
    }
  }

  private failed(name: string, err: unknown): void {
    this.failures.set(name, (this.failures.get(name) ?? 0) + 1);
    if (name === 'poll') this.logger?.warn({ err }, 'reading the revisions table failed; caches are re-read at the next poll that succeeds');
    else this.logger?.error({ err, revision: name }, `reloading ${name} failed; the previous ${name} stay in force until a reload succeeds`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
