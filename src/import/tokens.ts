import { timingSafeEqual } from 'node:crypto';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import type { AdminScope, TokenService } from '../enrollment/tokens.ts';
import { Errors } from '../errors.ts';
import { LIMITS } from '../tokens/limits.ts';
import type { ImportedToken, ImportWrite } from '../tokens/repository.ts';
import type { Clock } from '../util/clock.ts';
import { parseOathCsv } from './seedfiles/oathcsv.ts';
import { parsePskc } from './seedfiles/pskc.ts';
import { SeedFileError, SEED_FILE_FORMATS, type SeedFileFormat, type SeedFileKeys, type SeedToken } from './seedfiles/types.ts';

const SERIAL = /^[A-Za-z0-9_.:@-]{1,64}$/;
const MIN_SEED_BYTES = 16;
const MAX_SEED_BYTES = 128;

/** What one import stored: serials created, kept (already there with the same seed), counter moved forward. */
export interface TokenImportResult {
  created: string[];
  kept: string[];
  counterAdvanced: string[];
}

/** Why a token cannot be imported, or null. Shared by seed files and the LinOTP importer. */
export function tokenProblem(t: { serial: string; type: string; secret: Buffer; otplen: number; timeStep?: number }): string | null {
  if (!SERIAL.test(t.serial)) return `serial '${t.serial.slice(0, 64)}': use 1-64 of A-Z a-z 0-9 _ . : @ -`;
  if (t.type === 'spass') return null;
  if (t.type === 'pw') return t.secret.length === 0 || t.secret.length > 256 ? 'the static password must have 1-256 characters' : null;
  if (t.secret.length < MIN_SEED_BYTES) return `the seed is shorter than ${MIN_SEED_BYTES * 8} bits`;
  if (t.secret.length > MAX_SEED_BYTES) return `the seed is longer than ${MAX_SEED_BYTES} bytes`;
  if (!Number.isInteger(t.otplen) || t.otplen < 6 || t.otplen > 10) return `OTP length ${t.otplen}: otpd takes 6 to 10 digits`;
  if (t.type === 'totp' && t.timeStep !== 30 && t.timeStep !== 60) return `time step ${t.timeStep}: otpd takes 30 or 60 seconds`;
  return null;
}

/**
 * Stores imported tokens: seed files (`/admin/loadtokens`, `otpd tokens import`) and the
 * tokens of `otpd import linotp`. Every token is checked first and the file is stored in one
 * transaction, so a refused file stores nothing. A serial that exists with the same type and
 * seed is kept (a second import changes nothing but a counter that moved forward); one with
 * another type or seed refuses the file.
 */
export class TokenImporter {
  constructor(private readonly deps: { tokens: TokenService; keyring: KeyRing; config: ConfigService; clock: Clock }) {}

  /** Parses and imports a seed file. Throws OtpdError (2210, 2211, 2212) naming the problem. */
  async importSeedFile(format: string, text: string, keys: SeedFileKeys, opts: { realms: string[]; scope: AdminScope }): Promise<TokenImportResult> {
    if (!(SEED_FILE_FORMATS as readonly string[]).includes(format)) throw Errors.tokenFileType({ type: format, types: SEED_FILE_FORMATS.join(', ') });
    let parsed: SeedToken[];
    try {
      parsed = (format as SeedFileFormat) === 'pskc' ? parsePskc(text, keys) : parseOathCsv(text);
    } catch (e) {
      if (e instanceof SeedFileError) {
        if (e.needs) throw Errors.tokenFileKeyNeeded(e.needs);
        throw Errors.tokenFileRefused({ why: e.message });
      }
      throw e;
    }
    this.deps.tokens.assertRealmsAllowed(opts.scope, opts.realms);
    const seen = new Set<string>();
    for (const t of parsed) {
      const problem = tokenProblem(t);
      if (problem) throw Errors.tokenFileRefused({ why: `${t.serial.slice(0, 64)}: ${problem}` });
      if (seen.has(t.serial)) throw Errors.tokenFileRefused({ why: `${t.serial}: appears twice` });
      seen.add(t.serial);
    }
    const now = this.deps.clock.now();
    const config = this.deps.config;
    const rows: ImportedToken[] = parsed.map((t) => ({
      serial: t.serial, type: t.type, description: t.description.slice(0, 255), keyEnc: this.deps.keyring.encrypt('seed', t.secret), otplen: t.otplen,
      hashlib: t.hashlib, counter: t.counter, failCount: 0, active: true,
      countWindow: config.number('DefaultCountWindow'), syncWindow: config.number('DefaultSyncWindow'), maxFail: config.number('DefaultMaxFailCount'),
      pinHash: '', pinSalt: '', userId: '', resolver: '', resolverClass: '',
      info: t.type === 'totp'
        ? <Record<string, string>>{ hashlib: t.hashlib, timeStep: String(t.timeStep), timeWindow: String(Math.min(config.number('totp.timeWindow'), LIMITS.maxTotpWindowSteps)), timeShift: '0' }
        : { hashlib: t.hashlib },
      realms: opts.realms, createdAt: now,
    }));
    return this.store(rows, parsed.map((t) => t.secret), (why) => Errors.tokenFileRefused({ why }));
  }

  /**
   * Stores tokens whose secrets are given in clear beside them (`secrets[i]` is `rows[i]`'s);
   * `refuse` makes the error for a serial that exists with another type or seed.
   */
  async store(rows: ImportedToken[], secrets: Buffer[], refuse: (why: string) => Error): Promise<TokenImportResult> {
    const repo = this.deps.tokens.repository;
    for (const [i, row] of rows.entries()) {
      const existing = await repo.bySerial(row.serial);
      if (!existing) continue;
      if (existing.type !== row.type) throw refuse(`${row.serial}: a token with this serial exists with type ${existing.type}`);
      const stored = this.deps.tokens.secretOf(existing);
      const same = stored.length === secrets[i]!.length && timingSafeEqual(stored, secrets[i]!);
      if (!same) throw refuse(`${row.serial}: a token with this serial exists with another seed`);
    }
    const writes: ImportWrite[] = await repo.insertImported(rows, (serial, type) => refuse(`${serial}: a token with this serial exists with type ${type}`));
    const result: TokenImportResult = { created: [], kept: [], counterAdvanced: [] };
    writes.forEach((w, i) => result[w].push(rows[i]!.serial));
    return result;
  }
}
