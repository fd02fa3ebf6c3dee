import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lookup, specProblem } from '../../config/catalogue.ts';
import { parseLinotpEncKey } from '../../crypto/linotp.ts';
import { OtpdError } from '../../errors.ts';
import { PolicyDefinitionError } from '../../policy/parse.ts';
import type { Services } from '../../services.ts';
import { resolverType } from '../../users/registry.ts';
import { unsealSecrets } from '../../users/config.ts';
import { findProviderModule } from '../../delivery/registry.ts';
import { TokenImporter, type TokenImportResult } from '../tokens.ts';
import { planLinotpImport, type LinotpPlan, type PlannedProvider, type Refusal } from './plan.ts';
import { readLinotpDatabase } from './source.ts';

/** What `otpd import linotp` did (or, in a dry run, would do). Names and reasons only: never a secret. */
export interface LinotpImportReport {
  dryRun: boolean;
  resolvers: string[];
  realms: string[];
  defaultRealm?: string;
  policies: string[];
  providers: string[];
  config: string[];
  tokens: TokenImportResult;
  skippedTypes: { type: string; count: number; serials: string[] }[];
  refused: Refusal[];
  notes: string[];
}

/** The services the import writes through (their own validation applies). */
export type ImportServices = Pick<Services, 'db' | 'users' | 'policies' | 'delivery' | 'config' | 'tokens' | 'keyring' | 'clock'>;

/** Equal JSON values, object key order aside. */
function sameJson(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => x.localeCompare(y)).map(([k, x]) => [k, canon(x)]))
    : Array.isArray(v) ? v.map(canon) : v);
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

/** Whether the stored resolver already has exactly this configuration (secrets compared in clear). */
async function resolverUnchanged(services: ImportServices, name: string, typeName: string, params: Record<string, string>): Promise<boolean> {
  const type = resolverType(typeName)!;
  const row = await services.db.kysely.selectFrom('resolvers').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row || row.type !== type.type) return false;
  try {
    const stored = unsealSecrets(type, JSON.parse(row.config) as Record<string, string>, (v) => services.keyring.decryptString('config', v));
    return sameJson(stored, type.normalize(params));
  } catch {
    return false;
  }
}

/** Whether the stored provider already has exactly this class, configuration, timeout and default flag. */
async function providerUnchanged(services: ImportServices, p: PlannedProvider): Promise<boolean> {
  const row = await services.db.kysely.selectFrom('delivery_providers').selectAll().where('type', '=', p.type).where('name', '=', p.name).executeTakeFirst();
  if (!row || row.class_name !== findProviderModule(p.className)?.className || row.timeout !== p.timeout || (Number(row.is_default) === 1) !== p.isDefault) return false;
  try {
    return sameJson(JSON.parse(services.keyring.decryptString('config', row.config_enc)), JSON.parse(p.config));
  } catch {
    return false;
  }
}

const why = (e: unknown): string => (e instanceof OtpdError || e instanceof PolicyDefinitionError || e instanceof Error ? e.message : String(e));

/** Reads the LinOTP database and its encKey, then imports (or, with dryRun, only checks) everything. */
export async function importLinotp(services: ImportServices, opts: { dbUrl: string; encKeyFile: string; dryRun: boolean }): Promise<LinotpImportReport> {
  const keys = parseLinotpEncKey(readFileSync(opts.encKeyFile));
  const snapshot = await readLinotpDatabase(opts.dbUrl);
  const c = services.config;
  const plan = planLinotpImport(snapshot, keys, services.keyring, {
    countWindow: c.number('DefaultCountWindow'), syncWindow: c.number('DefaultSyncWindow'), maxFail: c.number('DefaultMaxFailCount'),
    totpWindow: c.number('totp.timeWindow'), now: services.clock.now(),
  });
  return applyLinotpPlan(services, plan, opts.dryRun);
}

/**
 * Stores a plan through otpd's own services, each item checked as an administrator's call
 * would be (resolver schemas and host policy, the policy catalogue, the provider modules, the
 * config catalogue, token limits). What is refused is listed with the reason and the rest goes
 * on. A dry run checks what can be checked without writing and stores nothing. Running it
 * twice stores nothing new the second time.
 */
export async function applyLinotpPlan(services: ImportServices, plan: LinotpPlan, dryRun: boolean): Promise<LinotpImportReport> {
  const report: LinotpImportReport = {
    dryRun, resolvers: [], realms: [], policies: [], providers: [], config: [], tokens: { created: [], kept: [], counterAdvanced: [] },
    skippedTypes: [...plan.skippedTypes].map(([type, serials]) => ({ type, count: serials.length, serials })),
    refused: [...plan.refused], notes: [...plan.notes],
  };
  const refuse = (kind: Refusal['kind'], name: string, e: unknown) => void report.refused.push({ kind, name, reason: why(e) });
  const { users, policies, delivery, config } = services;

  // resolvers, then realms (they name resolvers), then the default realm
  const known = new Set(users.resolverNames());
  for (const r of plan.resolvers) {
    try {
      if (!resolverType(r.type)) throw new Error(`resolver type ${r.type} is not supported (ldapresolver, sqlresolver, passwdresolver)`);
      if (dryRun) resolverType(r.type)!.normalize(r.params);
      else if (!(known.has(r.name) && (await resolverUnchanged(services, r.name, r.type, r.params)))) await users.setResolver(r.name, r.type, r.params, known.has(r.name) ? r.name : undefined);
      known.add(r.name);
      report.resolvers.push(r.name);
    } catch (e) {
      refuse('resolver', r.name, e);
    }
  }
  const realms = new Set(users.realmNames());
  for (const realm of plan.realms) {
    try {
      const missing = realm.resolvers.map((s) => s.slice(s.lastIndexOf('.') + 1)).filter((n) => !known.has(n));
      if (missing.length > 0) throw new Error(`its resolver${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'were' : 'was'} not imported`);
      if (!dryRun) await users.setRealm(realm.name, realm.resolvers);
      realms.add(realm.name);
      report.realms.push(realm.name);
    } catch (e) {
      refuse('realm', realm.name, e);
    }
  }
  if (plan.defaultRealm !== undefined) {
    if (!realms.has(plan.defaultRealm)) refuse('realm', plan.defaultRealm, new Error('the default realm was not imported'));
    else {
      if (!dryRun) await users.setDefaultRealm(plan.defaultRealm);
      report.defaultRealm = plan.defaultRealm;
    }
  }

  // system configuration through the catalogue; LinOTP's legacy provider keys become providers
  for (const entry of plan.config) {
    const spec = lookup(entry.key);
    const problem = !spec ? "unknown to otpd's config catalogue: nothing in otpd reads it"
      : spec.refused ?? (entry.secret ? null : specProblem(spec, entry.value));
    if (problem) {
      refuse('config', entry.key, new Error(problem));
      continue;
    }
    if (!dryRun) await config.set(entry.key, entry.value, entry.secret ? 'password' : '');
    report.config.push(entry.key);
  }
  if (!dryRun) {
    for (const type of await delivery.importLegacyProviders()) report.providers.push(`${type}/imported_default (legacy config keys)`);
  }

  for (const p of plan.providers) {
    try {
      if (!dryRun && !(await providerUnchanged(services, p))) await delivery.setProvider({ type: p.type, name: p.name, className: p.className, config: p.config, timeout: p.timeout, isDefault: p.isDefault });
      report.providers.push(`${p.type}/${p.name}${p.isDefault ? ' (default)' : ''}`);
    } catch (e) {
      refuse('provider', `${p.type}/${p.name}`, e);
    }
  }

  for (const input of plan.policies) {
    const refusal = policies.refusal(input);
    if (refusal !== undefined) {
      refuse('policy', input.name, new Error(refusal));
      continue;
    }
    try {
      if (!dryRun) await policies.set(input);
      report.policies.push(input.name);
    } catch (e) {
      refuse('policy', input.name, e);
    }
  }
  const adminScoped = plan.policies.filter((p) => report.policies.includes(p.name) && ['admin', 'system', 'audit'].includes(p.scope));
  if (adminScoped.length > 0) {
    report.notes.push(`admin/system/audit policies imported (${adminScoped.map((p) => p.name).join(', ')}): they now decide what otpd's administrators may do; make sure one names an otpd administrator (otpd admin list)`);
  }

  // tokens: one with a serial otpd has with another type or seed is refused, the rest stored together
  const accepted: LinotpPlan['tokens'] = [];
  for (const t of plan.tokens) {
    const existing = await services.tokens.repository.bySerial(t.row.serial);
    if (existing) {
      if (existing.type !== t.row.type) {
        refuse('token', t.row.serial, new Error(`a token with this serial exists in otpd with type ${existing.type}`));
        continue;
      }
      const stored = services.tokens.secretOf(existing);
      if (stored.length !== t.secret.length || !timingSafeEqual(stored, t.secret)) {
        refuse('token', t.row.serial, new Error('a token with this serial exists in otpd with another seed'));
        continue;
      }
      if (dryRun) {
        (existing.counter < t.row.counter ? report.tokens.counterAdvanced : report.tokens.kept).push(t.row.serial);
        continue;
      }
    } else if (dryRun) report.tokens.created.push(t.row.serial);
    accepted.push(t);
  }
  if (!dryRun && accepted.length > 0) {
    const importer = new TokenImporter({ tokens: services.tokens, keyring: services.keyring, config, clock: services.clock });
    report.tokens = await importer.store(accepted.map((t) => t.row), accepted.map((t) => t.secret), (reason) => new Error(reason));
  }
  return report;
}

/** The report as text: what was (or would be) imported, what was refused and why, the notes. */
export function formatLinotpReport(r: LinotpImportReport): string {
  const verb = r.dryRun ? 'would import' : 'imported';
  const list = (items: string[]) => (items.length ? items.join(', ') : '-');
  const lines = [
    r.dryRun ? 'DRY RUN: nothing was changed' : 'LinOTP import done',
    `resolvers ${verb}: ${list(r.resolvers)}`,
    `realms ${verb}: ${list(r.realms)}${r.defaultRealm ? ` (default realm ${r.defaultRealm})` : ''}`,
    `providers ${verb}: ${list(r.providers)}`,
    `policies ${verb}: ${list(r.policies)}`,
    `config keys ${verb}: ${list(r.config)}`,
    `tokens ${r.dryRun ? 'that would be created' : 'created'}: ${r.tokens.created.length}${r.tokens.created.length ? ` (${r.tokens.created.join(', ')})` : ''}`,
    `tokens already in otpd, kept: ${r.tokens.kept.length}${r.tokens.counterAdvanced.length ? `; counter moved forward to LinOTP's: ${r.tokens.counterAdvanced.join(', ')}` : ''}`,
  ];
  const skipped = r.skippedTypes.reduce((n, s) => n + s.count, 0);
  lines.push(`tokens skipped, type not supported by otpd: ${skipped}${skipped ? ` (${r.skippedTypes.map((s) => `${s.type}: ${s.count} [${s.serials.join(', ')}]`).join('; ')})` : ''}`);
  lines.push(`refused: ${r.refused.length}`);
  for (const x of r.refused) lines.push(`  ${x.kind} ${x.name}: ${x.reason}`);
  if (r.notes.length) lines.push('notes:');
  for (const n of r.notes) lines.push(`  ${n}`);
  return `${lines.join('\n')}\n`;
}
