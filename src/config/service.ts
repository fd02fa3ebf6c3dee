import type { Db } from '../store/db.ts';
import { bumpRevision, type RevisionWatcher } from '../store/revisions.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { CONFIG_DEFAULTS } from './defaults.ts';
import {
  CENSORED, LEGACY_PROVIDER_CONFIG, PlaceholderWithoutSecretError, censorLegacyJson, isCensoredWhole, isEncryptedEntry, restoreLegacyJson,
} from './secrets.ts';
import { screenStoredConfig, type StoredConfigProblem } from './validate-stored.ts';

export interface ConfigEntry {
  key: string;
  value: string;
  type: string;
  description: string;
}

/** A sealed value (KeyRing.encrypt); plain text stored by an older otpd does not start so. */
const isSealed = (value: string) => value.startsWith('g1:');

/**
 * LinOTP-style configuration entries (`/system/setConfig`), stored in the
 * `config` table, cached in the process and re-read when the `config`
 * revision moves (another node changed something). Secrets (entries of type
 * `password`, secret-named keys, LinOTP's legacy provider JSON; see
 * `secrets.ts`) are stored encrypted with the key ring and leave only
 * censored through `shown()` / `shownEntries()`.
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
    // secrets are stored encrypted (or about to be sealed): they are not limits and are not screened
    const { accepted, rejected } = screenStoredConfig(rows, this.cache, (r) => isEncryptedEntry(r.key, r.type));
    this.cache = accepted;
    this.rejected = rejected;
    if (rejected.length > 0) this.onRejected?.(rejected);
    await this.sealPlainSecrets();
  }

  /** Secrets an older otpd stored in clear are encrypted in place (a conditional write: concurrent nodes agree). */
  private async sealPlainSecrets(): Promise<void> {
    for (const entry of [...this.cache.values()]) {
      if (!isEncryptedEntry(entry.key, entry.type) || isSealed(entry.value)) continue;
      const sealed = this.keyring.encrypt('config', entry.value);
      const res = await this.db.kysely.updateTable('config').set({ value: sealed })
        .where('key', '=', entry.key).where('value', '=', entry.value).executeTakeFirst();
      if (Number(res.numUpdatedRows) > 0) this.cache.set(entry.key, { ...entry, value: sealed });
    }
  }

  /** Re-reads when another node changes an entry; a failed reload is logged and counted by the watcher. */
  watch(watcher: RevisionWatcher): void {
    watcher.on('config', () => this.load());
  }

  private plain(entry: ConfigEntry): string {
    return isEncryptedEntry(entry.key, entry.type) && isSealed(entry.value) ? this.keyring.decryptString('config', entry.value) : entry.value;
  }

  /** The value (decrypted for secrets), else the LinOTP default, else undefined. */
  get(key: string): string | undefined {
    const entry = this.cache.get(key);
    if (entry) return this.plain(entry);
    return CONFIG_DEFAULTS[key];
  }

  getInt(key: string, fallback: number): number {
    const n = Number.parseInt(this.get(key) ?? '', 10);
    return Number.isFinite(n) ? n : fallback;
  }

  /** Stored entries (not defaults) as stored: secret values are ciphertext, never clear. */
  entries(): ConfigEntry[] {
    return [...this.cache.values()].sort((a, b) => a.key.localeCompare(b.key));
  }

  has(key: string): boolean {
    return this.cache.has(key);
  }

  /** The value as an API may show it: secrets as the placeholder, legacy provider JSON with its secret fields censored. */
  shown(key: string): string | undefined {
    const entry = this.cache.get(key);
    return entry ? this.censor(entry) : CONFIG_DEFAULTS[key];
  }

  /** Every stored entry's key and shown value. */
  shownEntries(): { key: string; value: string }[] {
    return this.entries().map((e) => ({ key: e.key, value: this.censor(e) }));
  }

  private censor(entry: ConfigEntry): string {
    if (isCensoredWhole(entry.key, entry.type)) return CENSORED;
    if (entry.key in LEGACY_PROVIDER_CONFIG) {
      const classKey = LEGACY_PROVIDER_CONFIG[entry.key];
      let plain: string;
      try {
        plain = this.plain(entry);
      } catch {
        return CENSORED;
      }
      return censorLegacyJson(plain, classKey ? this.get(classKey) : undefined);
    }
    return entry.value;
  }

  /**
   * What an admin write means for the stored entry: the placeholder (whole, or inside a
   * legacy provider JSON) stands for the stored secret. Returns null when the stored
   * entry stays exactly as it is (value, ciphertext and type), else the value and type
   * to pass to set(); a `password` entry stays one. Throws PlaceholderWithoutSecretError
   * for a placeholder with no stored secret behind it.
   */
  resolveAdminWrite(key: string, value: string, type: string): { value: string; type: string } | null {
    const existing = this.cache.get(key);
    const effectiveType = existing?.type === 'password' && type === '' ? 'password' : type;
    const existingSecret = existing !== undefined && isEncryptedEntry(existing.key, existing.type);
    if (value === CENSORED) {
      if (existingSecret) return null;
      if (isEncryptedEntry(key, effectiveType)) throw new PlaceholderWithoutSecretError(key);
      return { value, type: effectiveType };
    }
    if (key in LEGACY_PROVIDER_CONFIG) {
      const restored = restoreLegacyJson(key, value, existing ? this.plain(existing) : undefined);
      if (restored.unchanged && existing && existing.type === effectiveType) return null;
      return { value: restored.value, type: effectiveType };
    }
    return { value, type: effectiveType };
  }

  async set(key: string, value: string, type = '', description = ''): Promise<void> {
    const stored = isEncryptedEntry(key, type) ? this.keyring.encrypt('config', value) : value;
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
