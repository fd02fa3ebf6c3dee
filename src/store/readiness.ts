import { sql } from 'kysely';
import type { Db } from './db.ts';
import { migrationsCurrent } from './migrate.ts';

/** Why a node cannot serve, or `ready`. */
export type Readiness = 'ready' | 'database unreachable' | 'migrations pending';

/** The database answers and its migrations are current: what /readyz and RADIUS Status-Server report. */
export async function readiness(db: Db): Promise<Readiness> {
  try {
    await sql`select 1`.execute(db.kysely);
    return (await migrationsCurrent(db)) ? 'ready' : 'migrations pending';
  } catch {
    return 'database unreachable';
  }
}

/**
 * `readiness` asked at most once per `ttlMs` (one probe in flight, later callers share it): a
 * flood of health checks costs the database one query a second, not one per packet.
 */
export function cachedReadiness(db: Db, ttlMs = 1000, now: () => number = Date.now): () => Promise<Readiness> {
  let last: { at: number; value: Readiness } | undefined;
  let pending: Promise<Readiness> | undefined;
  return () => {
    if (last && now() - last.at < ttlMs) return Promise.resolve(last.value);
    pending ??= readiness(db).then((value) => {
      last = { at: now(), value };
      pending = undefined;
      return value;
    });
    return pending;
  };
}
