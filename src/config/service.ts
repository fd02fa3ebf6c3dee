import type { Db } from '../store/db.ts';
import { bumpRevision, type RevisionWatcher } from '../store/revisions.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { CONFIG_DEFAULTS } from './defaults.ts';
import { screenStoredConfig, type StoredConfigProblem } from './validate-stored.ts';

export interface ConfigEntry {
  key: string;
  value: string;
  type: string;
  description: string;
}

/**
 * LinOTP-style configuration entries (`/system/setConfig`), stored in the
 * `config` table, cached in the process and re-read when the `config`
 * revision moves (another node changed something). Entries of type
 * `password` are stored encrypted with the key ring.
 */
export class ConfigService {
  private cache = new Map<string, ConfigEntry>();
  /** Stored entries the last load refused (validate-stored.ts); their previous value or the default applies. */
  rejected: StoredConfigProblem[] = [];
  /** Told about refused entries on every load that finds some. */
  onRejected?: (problems: StoredConfigProblem[]) => void;

  constructor(private readonly db: Db, private readonly keyring: KeyRing) {}

  async load(): Promise<void> {
    const rows = await this.db.kysely.selectFrom('config').selectAll().execute();
    const { accepted, rejected } = screenStoredConfig(rows, this.cache);
    this.cache = accepted;
    this.rejected = rejected;
    if (rejected.length > 0) this.onRejected?.(rejected);
  }

  watch(watcher: RevisionWatcher): void {
    watcher.on('config', () => void this.load().catch(() => undefined));
  }

  /** The value (decrypted for `password` entries), else the LinOTP default, else undefined. */
  get(key: string): string | undefined {
    const entry = this.cache.get(key);
    if (entry) return entry.type === 'password' ? this.keyring.decryptString('config', entry.value) : entry.value;
    return CONFIG_DEFAULTS[key];
  }

  getInt(key: string, fallback: number): number {
    const n = Number.parseInt(this.get(key) ?? '', 10);
    return Number.isFinite(n) ? n : fallback;
  }

  /** Stored entries (not defaults); password values are never returned in clear. */
  entries(): ConfigEntry[] {
    return [...this.cache.values()].sort((a, b) => a.key.localeCompare(b.key));
  }

  has(key: string): boolean {
    return this.cache.has(key);
  }

  async set(key: string, value: string, type = '', description = ''): Promise<void> {
    const stored = type === 'password' ? this.keyring.encrypt('config', value) : value;
    const row = { key, value: stored, type, description };
    await this.db.kysely.transaction().execute(async (trx) => {
      const updated = await trx.updateTable('config').set(row).where('key', '=', key).executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) {
        const existing = await trx.selectFrom('config').select('key').where('key', '=', key).executeTakeFirst();
        if (!existing) await trx.insertInto('config').values(row).execute();
      }
    });
    this.cache.set(key, row);
    await bumpRevision(this.db, 'config');
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.db.kysely.deleteFrom('config').where('key', '=', key).executeTakeFirst();
    this.cache.delete(key);
    await bumpRevision(this.db, 'config');
    return Number(res.numDeletedRows) > 0;
  }
}
