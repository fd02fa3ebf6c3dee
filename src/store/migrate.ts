import { Migrator } from 'kysely';
import type { Db } from './db.ts';
import { migrationProvider, migrations } from './migrations/index.ts';

/** Applies all pending migrations; throws with the failing migration's name. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db: db.kysely, provider: migrationProvider, allowUnorderedMigrations: true });
  const run = () => migrator.migrateToLatest();
  const { error, results } = await (db.withoutQueryTimeout ? db.withoutQueryTimeout(run) : run());
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const name = failed ? ` (${failed.migrationName})` : '';
    throw new Error(`database migration failed${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when every known migration has been applied (for /readyz). */
export async function migrationsCurrent(db: Db): Promise<boolean> {
  const migrator = new Migrator({ db: db.kysely, provider: migrationProvider, allowUnorderedMigrations: true });
  const all = await migrator.getMigrations();
  return all.length === Object.keys(migrations).length && all.every((m) => m.executedAt !== undefined);
}
