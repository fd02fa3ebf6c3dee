import { Type } from 'typebox';
import type { Db } from '../store/db.ts';
import { bumpRevision, type RevisionWatcher } from '../store/revisions.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { Errors } from '../errors.ts';
import {
  exact, lookup, specDecode, specProblem, type BoolKey, type ConfigKey, type ConfigSpec, type ConfigValue, type ListKey, type NumberKey, type StringKey,
} from './catalogue.ts';
import {
  CENSORED, LEGACY_PROVIDER_CONFIG, PlaceholderWithoutSecretError, censorLegacyJson, isCensoredWhole, isEncryptedEntry, restoreLegacyJson,
} from './secrets.ts';
import { screenStoredConfig, type StoredConfigProblem } from './validate-stored.ts';
import { isNumeric, isSecretSchema } from './values.ts';

export interface ConfigEntry {
  key: string;
  value: string;
  type: string;
  description: string;
}

/** A sealed value (KeyRing.encrypt); plain text stored by an older otpd does not start so. */
const isSealed = (value: string) => value.startsWith('g1:');

/** The typed value of a stored text that fits its entry, else undefined. */
function fitting(spec: ConfigSpec, text: string | undefined): { value: unknown } | undefined {
  if (text === undefined) return undefined;
  const decoded = specDecode(spec, text);
  return decoded.ok ? { value: decoded.value } : undefined;
}

/**
 * LinOTP-style configuration entries (`/system/setConfig`), stored in the
 * `config` table, cached in the process and re-read when the `config`
 * revision moves (another node changed something). Every key otpd reads has
 * an entry in the catalogue (catalogue.ts); the typed readers (`number()`,
 * `bool()`, `string()`, `list()`) answer the stored value when it fits that
 * entry, else the entry's default. Secrets (entries of type `password`, keys
 * the catalogue or their name mark secret; see `secrets.ts`) are stored
 * encrypted with the key ring and leave only censored through `shown()` /
 * `shownEntries()`.
 */
export class ConfigService {
  private cache = new Map<string, ConfigEntry>();
  /** Typed values already decoded, by key; dropped when the key changes. */
  private typed = new Map<string, unknown>();
  /** Stored entries the last load refused (validate-stored.ts); their previous value or the default applies. */
  rejected: StoredConfigProblem[] = [];
  /** Stored keys the catalogue does not know (nothing in otpd reads them), as of the last load. */
  unknown: string[] = [];
  /** Told about refused entries on every load that finds some. */
  onRejected?: (problems: StoredConfigProblem[]) => void;

  constructor(private readonly db: Db, private readonly keyring: KeyRing) {}

  async load(): Promise<void> {
    const rows = await this.db.kysely.selectFrom('config').selectAll().execute();
    const { accepted, rejected, unknown } = screenStoredConfig(rows, this.cache, (r) => this.plain(r));
    this.cache = accepted;
    this.typed = new Map();
    this.rejected = rejected;
    this.unknown = unknown;
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

  private plain(entry: { key: string; value: string; type: string }): string {
    return isEncryptedEntry(entry.key, entry.type) && isSealed(entry.value) ? this.keyring.decryptString('config', entry.value) : entry.value;
  }

  /** The stored text (decrypted for secrets), else the catalogue default, else undefined. */
  get(key: string): string | undefined {
    const entry = this.cache.get(key);
    if (entry) return this.plain(entry);
    return exact(key)?.default;
  }

  /**
   * The typed value of a catalogue key: the stored value when it fits the entry (a value
   * written around the API that does not fit counts as unset), else the entry's default, else
   * the empty value of its type (`''`, `[]`). Throws for a key the catalogue does not know.
   */
  value<K extends ConfigKey>(key: K): ConfigValue<K> {
    return this.read(key) as ConfigValue<K>;
  }

  number(key: NumberKey): number {
    return this.read(key) as number;
  }

  bool(key: BoolKey): boolean {
    return this.read(key) as boolean;
  }

  /** Also the families: `DeliveryDefaultCountry.<realm>`, `<TYPE>_CHALLENGE_PROMPT`. */
  string(key: StringKey): string {
    return this.read(key) as string;
  }

  list(key: ListKey): string[] {
    return this.read(key) as string[];
  }

  private read(key: string): unknown {
    if (this.typed.has(key)) return this.typed.get(key);
    const spec = lookup(key);
    if (!spec) throw Errors.unknownConfigKey({ key });
    const stored = this.cache.has(key) ? fitting(spec, this.get(key)) : undefined;
    const found = stored ?? fitting(spec, exact(key)?.default);
    const value = found ? found.value : Type.IsArray(spec.type) ? [] : '';
    this.typed.set(key, value);
    return value;
  }

  /** @deprecated read typed values with `number()`; kept for callers of the untyped API. */
  getInt(key: string, fallback: number): number {
    const spec = lookup(key);
    if (spec && isNumeric(spec.type)) return this.read(key) as number;
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
    return entry ? this.censor(entry) : exact(key)?.default;
  }

  /** Every stored entry's key and shown value. */
  shownEntries(): { key: string; value: string }[] {
    return this.entries().map((e) => ({ key: e.key, value: this.censor(e) }));
  }

  private censor(entry: ConfigEntry): string {
    if (isCensoredWhole(entry.key, entry.type)) return CENSORED;
    if (Object.hasOwn(LEGACY_PROVIDER_CONFIG, entry.key)) {
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
    if (Object.hasOwn(LEGACY_PROVIDER_CONFIG, key)) {
      const restored = restoreLegacyJson(key, value, existing ? this.plain(existing) : undefined);
      if (restored.unchanged && existing && existing.type === effectiveType) return null;
      return { value: restored.value, type: effectiveType };
    }
    return { value, type: effectiveType };
  }

  /**
   * Stores one entry. A value its catalogue entry refuses (type, bounds, choices) is refused here
   * too, whoever calls (Errors.invalidConfigValue), so no write path can store what would make
   * the next start fail (Errors.storedConfigInvalid) or be ignored.
   */
  async set(key: string, value: string, type = '', description = ''): Promise<void> {
    const spec = lookup(key);
    const problem = spec && !isSecretSchema(spec.type) ? specProblem(spec, value) : null;
    if (problem) throw Errors.invalidConfigValue({ key, problem });
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
    this.typed.delete(key);
    await bumpRevision(this.db, 'config');
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.db.kysely.deleteFrom('config').where('key', '=', key).executeTakeFirst();
    this.cache.delete(key);
    this.typed.delete(key);
    await bumpRevision(this.db, 'config');
    return Number(res.numDeletedRows) > 0;
  }
}
