import type { Settings } from '../config/settings.ts';
import { KeyRing } from '../crypto/keyring.ts';
import { openDatabase, type Db } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { systemClock, type Clock } from '../util/clock.ts';

/**
 * The key file and the database of the configured instance, migrated, without the services
 * behind them: what `init`, `migrate`, `admin …`, `audit verify` and `radius client …` need.
 * Loading every service (providers, resolvers, policies, the HTTP stack) costs about half a
 * second before the first line of output; a command that only reads and writes rows should
 * not pay it.
 */
export interface Store {
  settings: Settings;
  db: Db;
  keyring: KeyRing;
  /** The key file was created by this call. */
  keyCreated: boolean;
  clock: Clock;
  close(): Promise<void>;
}

/** Opens (and on first use creates) the key file and the database, and applies pending migrations. */
export async function openStore(settings: Settings): Promise<Store> {
  const { keyring, created } = KeyRing.loadOrCreate(settings.keyFile);
  const db = await openDatabase(settings.databaseUrl, { queryTimeoutMs: settings.dbQueryTimeoutMs });
  try {
    await migrateToLatest(db);
  } catch (e) {
    await db.close();
    throw e;
  }
  return { settings, db, keyring, keyCreated: created, clock: systemClock, close: () => db.close() };
}
