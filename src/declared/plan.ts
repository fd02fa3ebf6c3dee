/**
 * `otpd config apply`: what a declarative file changes (the diff), checked in full before
 * anything is written, and the writes that make it so. Every object goes through the checks
 * of the service the API uses (`prepare`/`check*` methods), so a refusal is the API's
 * catalogue error, prefixed with the object's path in the file (`resolvers.corp: ERR2300: …`).
 */
import { isSecretKey, LEGACY_PROVIDER_CONFIG } from '../config/secrets.ts';
import { censorWithSchema, sameJson, type Json } from '../config/secret-fields.ts';
import { planConfigWrite } from '../config/admin-write.ts';
import { lookup } from '../config/catalogue.ts';
import type { ConfigService } from '../config/service.ts';
import { providerConfigRefusal } from '../delivery/config.ts';
import { findProviderModule } from '../delivery/registry.ts';
import type { DeliveryService } from '../delivery/service.ts';
import { Errors, OtpdError } from '../errors.ts';
import type { Policy, PolicyInput } from '../policy/match.ts';
import type { PolicyService } from '../policy/service.ts';
import { policiesNaming } from '../policy/usage.ts';
import { normalizeClient, type RadiusClientService } from '../radius/clients.ts';
import type { UserDirectory } from '../users/directory.ts';
import { resolverType } from '../users/registry.ts';
import { sameCidr, type Cidr } from '../util/net.ts';
import { isRef, Problems, resolveRef, resolveRefsDeep, scalarText, type DeclaredFile, type RefSource, type Section } from './file.ts';

/** The services a plan reads and writes through (the composition root's Services fit). */
export interface DeclaredDeps {
  config: ConfigService;
  users: UserDirectory;
  delivery: DeliveryService;
  policies: PolicyService;
  radiusClients: RadiusClientService;
}

/** One field of an object as the diff shows it; a secret's value is never shown. */
export interface FieldChange {
  name: string;
  before?: string;
  after?: string;
  secret: boolean;
}

export interface Change {
  section: Section;
  /** What the diff calls the object: `resolver corp`, `sms provider main`, `config key UserCacheTTL`. */
  label: string;
  kind: 'add' | 'change' | 'remove';
  /** Added objects list every field, changed ones the fields that differ; removed ones none. */
  fields: FieldChange[];
}

export interface Plan {
  changes: Change[];
  /** Stored objects of the file's sections that the file does not name, left as they are (no `--prune`). */
  kept: string[];
  /** Objects the file leaves alone on purpose (managed providers, settings-file RADIUS clients), with why. */
  notes: string[];
  /** The writes, in order; run by {@link applyPlan}. */
  writes: (() => Promise<void>)[];
}

export interface PlanOptions {
  /** Remove stored objects of the file's sections that the file does not name. @default false */
  prune?: boolean;
  /** Store policies even when no administrator may write the system configuration afterwards. @default false */
  enforce?: boolean;
  /** The file's name, for messages. */
  fileName: string;
}

/** A file refused object by object: every refusal with its path; nothing was written. */
export class PlanRefused extends OtpdError {
  constructor(readonly problems: { path: string; error: OtpdError }[]) {
    const first = problems[0]!.error;
    const text = problems.map((p) => `${p.path}: ERR${p.error.code}: ${p.error.message}`).join('; ');
    super(first.code, problems.length === 1 ? text : `${problems.length} objects refused, nothing applied: ${text}`, first.httpStatus, first.reason);
    this.name = 'PlanRefused';
  }
}

const SECRET_SHOWN = '(secret)';
/** Config keys another section owns: the default realm (`realms.<name>.default`) and LinOTP's legacy provider keys (`providers`). */
const OWNED_KEYS: Record<string, string> = {
  DefaultRealm: 'the default realm is set with realms.<name>.default: true',
  ...Object.fromEntries(
    ['SMSProvider', 'EmailProvider', 'PushProvider', 'VoiceProvider', ...Object.keys(LEGACY_PROVIDER_CONFIG)].map((k) => [k, 'LinOTP\'s legacy provider keys are not managed here: declare the provider under providers']),
  ),
};

/** Whether `otpd config export` writes a stored config key (and `--prune` may remove it). */
export function exportableConfigKey(key: string): boolean {
  return !Object.hasOwn(OWNED_KEYS, key) && lookup(key) !== undefined && !lookup(key)!.refused;
}

/** Runs one object's checks; a catalogue error is recorded with the object's path. */
class Checks {
  readonly refused: { path: string; error: OtpdError }[] = [];
  async at<T>(path: string, fn: () => T | Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (e) {
      const mapped = providerConfigRefusal(e);
      if (mapped instanceof OtpdError) {
        this.refused.push({ path, error: mapped });
        return undefined;
      }
      throw mapped;
    }
  }
}

function fieldsOf(values: Record<string, string>, secret: (name: string) => boolean): FieldChange[] {
  return Object.entries(values).map(([name, after]) => ({ name, after, secret: secret(name) }));
}

/** The fields that differ between two flat views (a secret differs by value, shown only as changed). */
function diffFields(before: Record<string, string>, after: Record<string, string>, secret: (name: string) => boolean): FieldChange[] {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return names.filter((n) => before[n] !== after[n]).map((n) => ({ name: n, before: before[n], after: after[n], secret: secret(n) }));
}

/** JSON leaves by dotted path (`config.PARAMETER.apikey`), values as text. */
function flatten(node: unknown, path: string, out: Record<string, string> = {}): Record<string, string> {
  if (node && typeof node === 'object' && !Array.isArray(node) && Object.keys(node).length > 0) {
    for (const [k, v] of Object.entries(node)) flatten(v, path ? `${path}.${k}` : k, out);
  } else {
    out[path] = typeof node === 'string' ? node : JSON.stringify(node);
  }
  return out;
}

/**
 * Where a config holds secrets: the paths (key segments) at which its censored form (the
 * provider schema's `secret: true` fields, secret-named keys of free-form maps, URL passwords)
 * differs from the clear one.
 */
export function secretPathsOf(clear: unknown, schema: unknown): string[][] {
  const out: string[][] = [];
  const walk = (a: unknown, b: unknown, path: string[]) => {
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
      for (const k of Object.keys(a)) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], [...path, k]);
    } else if (!sameJson(a as Json, b as Json)) {
      out.push(path);
    }
  };
  walk(clear, censorWithSchema(clear as Json, schema), []);
  return out;
}

/** The dotted field names (as {@link flatten} writes them under `prefix`) of a config's secrets. */
function secretLeaves(clear: Record<string, unknown>, schema: unknown, prefix: string): Set<string> {
  return new Set(secretPathsOf(clear, schema).map((p) => [prefix, ...p].filter(Boolean).join('.')));
}

/** Whether the raw (file) value at a path, or one of its ancestors, is a reference. */
function refAt(raw: unknown, path: string[]): boolean {
  let node = raw;
  for (const part of path) {
    if (isRef(node)) return true;
    if (!node || typeof node !== 'object') return false;
    node = (node as Record<string, unknown>)[part];
  }
  return isRef(node);
}

const literalSecret = 'a secret: give it as a reference {env: NAME} or {file: PATH}, not as a value in the file';

/**
 * The plan of a file: every object checked (file problems first, as one 2707; then each
 * object through its service's checks, all refusals together as {@link PlanRefused}), the
 * diff against what is stored, and the writes. Nothing is written here.
 */
export async function planFile(file: DeclaredFile, source: RefSource, deps: DeclaredDeps, opts: PlanOptions): Promise<Plan> {
  const problems = new Problems(opts.fileName);
  const checks = new Checks();
  const plan: Plan = { changes: [], kept: [], notes: [], writes: [] };
  const prune = opts.prune === true;
  // removals run after every create and update, RADIUS clients first and resolvers last
  const removals = { radius_clients: [] as (() => Promise<void>)[], providers: [] as (() => Promise<void>)[], realms: [] as (() => Promise<void>)[], config: [] as (() => Promise<void>)[] };

  // ---- resolve references and refuse secrets written as values (file problems)
  const configValues = new Map<string, string>();
  for (const [key, raw] of Object.entries(file.config ?? {})) {
    const path = `config.${key}`;
    if (Object.hasOwn(OWNED_KEYS, key)) problems.add(path, OWNED_KEYS[key]!);
    if (isSecretKey(key) && !isRef(raw) && raw !== '') problems.add(path, literalSecret);
    configValues.set(key, scalarText(raw, path, source, problems));
  }
  const resolverParams = new Map<string, { type: string; params: Record<string, string>; secretKeys: readonly string[] }>();
  for (const [name, r] of Object.entries(file.resolvers ?? {})) {
    const secretKeys = resolverType(r.type)?.secretKeys ?? [];
    const params: Record<string, string> = {};
    for (const [key, raw] of Object.entries(r.config)) {
      const path = `resolvers.${name}.config.${key}`;
      if (secretKeys.some((s) => s.toLowerCase() === key.toLowerCase()) && !isRef(raw) && raw !== '') problems.add(path, literalSecret);
      params[key] = scalarText(raw, path, source, problems);
    }
    resolverParams.set(name, { type: r.type, params, secretKeys });
  }
  const providerConfigs = new Map<string, Record<string, unknown>>();
  for (const type of ['sms', 'email'] as const) {
    for (const [name, p] of Object.entries(file.providers?.[type] ?? {})) {
      const path = `providers.${type}.${name}.config`;
      const resolved = resolveRefsDeep(p.config, path, source, problems) as Record<string, unknown>;
      providerConfigs.set(`${type}:${name}`, resolved);
      const module = findProviderModule(p.class);
      if (!module) continue; // the provider check names the class
      for (const leaf of secretPathsOf(resolved, module.schema)) {
        if (!refAt(p.config, leaf)) problems.add(`${path}.${leaf.join('.')}`, literalSecret);
      }
    }
  }
  const radiusSecrets = new Map<string, string>();
  for (const [name, c] of Object.entries(file.radius_clients ?? {})) {
    const path = `radius_clients.${name}.secret`;
    if (!isRef(c.secret)) problems.add(path, literalSecret);
    else radiusSecrets.set(name, resolveRef(c.secret, path, source, problems) ?? '');
  }
  const defaults = Object.entries(file.realms ?? {}).filter(([, r]) => r.default === true).map(([n]) => n);
  if (defaults.length > 1) problems.add('realms', `only one realm can be the default (${defaults.join(', ')})`);
  for (const type of ['sms', 'email'] as const) {
    const d = Object.entries(file.providers?.[type] ?? {}).filter(([, p]) => p.default === true).map(([n]) => n);
    if (d.length > 1) problems.add(`providers.${type}`, `only one ${type} provider can be the default (${d.join(', ')})`);
  }
  problems.throwIfAny();

  // ---- config keys
  if (file.config) {
    const { config } = deps;
    for (const [key, value] of configValues) {
      const write = await checks.at(`config.${key}`, () => planConfigWrite(config, key, key, value, ''));
      if (!write) continue;
      const secret = isSecretKey(key) || write.type === 'password';
      const before = config.has(key) ? config.get(key) : undefined;
      if (before === write.value) continue;
      plan.changes.push({ section: 'config', label: `config key ${key}`, kind: before === undefined ? 'add' : 'change', fields: [{ name: 'value', before, after: write.value, secret }] });
      plan.writes.push(() => config.set(key, write.value, write.type));
    }
    for (const e of config.entries()) {
      if (configValues.has(e.key) || !exportableConfigKey(e.key)) continue;
      if (!prune) {
        plan.kept.push(`config key ${e.key}`);
        continue;
      }
      plan.changes.push({ section: 'config', label: `config key ${e.key}`, kind: 'remove', fields: [] });
      removals.config.push(async () => void (await config.delete(e.key)));
    }
  }

  // ---- resolvers
  const { users } = deps;
  const prunedResolvers = file.resolvers && prune ? users.resolverNames().filter((n) => !resolverParams.has(n)) : [];
  for (const [name, r] of resolverParams) {
    const existing = users.storedResolver(name);
    const checked = await checks.at(`resolvers.${name}`, () => users.checkResolver(name, r.type, r.params, existing ? name : undefined));
    if (!checked) continue;
    const secret = (k: string) => r.secretKeys.includes(k);
    const after = { type: checked.type, ...checked.config };
    if (existing) {
      const fields = diffFields({ type: existing.type, ...existing.config }, after, secret);
      if (fields.length === 0) continue;
      plan.changes.push({ section: 'resolvers', label: `resolver ${name}`, kind: 'change', fields });
    } else {
      plan.changes.push({ section: 'resolvers', label: `resolver ${name}`, kind: 'add', fields: fieldsOf(after, secret) });
    }
    plan.writes.push(() => users.setResolver(name, r.type, r.params, existing ? name : undefined));
  }
  if (file.resolvers) {
    for (const name of users.resolverNames()) if (!resolverParams.has(name) && !prune) plan.kept.push(`resolver ${name}`);
  }

  // ---- realms
  const typeOf = (resolver: string): string | undefined => {
    const declared = resolverParams.get(resolver);
    if (declared) return resolverType(declared.type)?.type;
    return prunedResolvers.includes(resolver) ? undefined : users.storedResolver(resolver)?.type;
  };
  const finalRealms = new Map<string, string[]>();
  const declaredRealms = new Set<string>();
  for (const [raw, r] of Object.entries(file.realms ?? {})) {
    const checked = await checks.at(`realms.${raw}`, () => users.checkRealm(raw, r.resolvers, typeOf));
    if (!checked) continue;
    const { name, resolvers } = checked;
    if (declaredRealms.has(name)) {
      checks.refused.push({ path: `realms.${raw}`, error: Errors.invalidParameter({ name: 'realm', why: `realm ${name} is named twice (realm names are lower-case)` }) });
      continue;
    }
    declaredRealms.add(name);
    finalRealms.set(name, resolvers);
    const exists = users.realmExists(name);
    const before: Record<string, string> = exists ? { resolvers: users.resolversOfRealm(name).join(', '), default: String(users.defaultRealm() === name) } : {};
    const isDefault = r.default === true || (exists && users.defaultRealm() === name);
    const after = { resolvers: resolvers.join(', '), default: String(isDefault) };
    const fields = exists ? diffFields(before, after, () => false) : fieldsOf(after, () => false);
    if (exists && fields.length === 0) continue;
    plan.changes.push({ section: 'realms', label: `realm ${name}`, kind: exists ? 'change' : 'add', fields });
    if (!exists || fields.some((f) => f.name === 'resolvers')) plan.writes.push(() => users.setRealm(name, resolvers));
    if (r.default === true && users.defaultRealm() !== name) plan.writes.push(async () => void (await users.setDefaultRealm(name)));
  }
  if (file.realms) {
    for (const name of users.realmNames()) {
      if (declaredRealms.has(name)) continue;
      if (!prune) {
        plan.kept.push(`realm ${name}`);
        finalRealms.set(name, users.resolversOfRealm(name));
        continue;
      }
      plan.changes.push({ section: 'realms', label: `realm ${name}`, kind: 'remove', fields: [] });
      removals.realms.push(async () => void (await users.deleteRealm(name)));
    }
  } else {
    for (const name of users.realmNames()) finalRealms.set(name, users.resolversOfRealm(name));
  }
  for (const name of prunedResolvers) {
    const using = [...finalRealms].filter(([, list]) => list.includes(name)).map(([realm]) => `'${realm}'`);
    if (using.length > 0) {
      checks.refused.push({ path: `resolvers (--prune ${name})`, error: Errors.resolverInUse({ name, realms: using.join(', ') }) });
      continue;
    }
    plan.changes.push({ section: 'resolvers', label: `resolver ${name}`, kind: 'remove', fields: [] });
  }

  // ---- policies (before providers are removed: a provider a policy names cannot go)
  const { policies } = deps;
  const current = new Map(policies.list({ includeInactive: true }).map((p) => [p.name, p]));
  const inputs: PolicyInput[] = Object.entries(file.policies ?? {}).map(([name, p]) => ({
    name, scope: p.scope, action: p.action, realm: p.realm, user: p.user ?? '', client: p.client ?? '', time: p.time ?? '', active: p.active !== false,
  }));
  const normalized = (await checks.at('policies', () => policies.checkReplace(inputs, [], { enforce: true }))) ?? [];
  const policyView = (p: Policy): Record<string, string> => ({ scope: p.scope, action: p.action, realm: p.realm, user: p.user, client: p.client, time: p.time, active: String(p.active) });
  const changedPolicies: PolicyInput[] = [];
  for (const [i, p] of normalized.entries()) {
    const before = current.get(p.name);
    const fields = before ? diffFields(policyView(before), policyView(p), () => false) : fieldsOf(policyView(p), () => false);
    if (before && fields.length === 0) continue;
    plan.changes.push({ section: 'policies', label: `policy ${p.name}`, kind: before ? 'change' : 'add', fields });
    changedPolicies.push(inputs[i]!);
  }
  const deletedPolicies: string[] = [];
  if (file.policies) {
    for (const name of current.keys()) {
      if (file.policies[name] !== undefined) continue;
      if (!prune) {
        plan.kept.push(`policy ${name}`);
        continue;
      }
      deletedPolicies.push(name);
      plan.changes.push({ section: 'policies', label: `policy ${name}`, kind: 'remove', fields: [] });
    }
  }
  if (changedPolicies.length + deletedPolicies.length > 0 && normalized.length === inputs.length) {
    await checks.at('policies', () => policies.checkReplace(changedPolicies, deletedPolicies, { enforce: opts.enforce }));
    plan.writes.push(() => policies.replace(changedPolicies, deletedPolicies, { enforce: opts.enforce }));
  }
  const finalPolicyRows = [
    ...[...current.values()].filter((p) => !deletedPolicies.includes(p.name) && !normalized.some((n) => n.name === p.name)),
    ...normalized,
  ];

  // ---- providers
  const { delivery } = deps;
  const stored = await delivery.storedProviders();
  for (const type of ['sms', 'email'] as const) {
    const declared = file.providers?.[type];
    if (!declared) continue;
    const declaredDefault = Object.entries(declared).find(([, p]) => p.default === true)?.[0];
    let hasDefault = stored.some((s) => s.type === type && s.isDefault);
    for (const [name, p] of Object.entries(declared)) {
      const path = `providers.${type}.${name}`;
      const config = providerConfigs.get(`${type}:${name}`)!;
      const timeout = String(p.timeout ?? '5');
      const input = { type, name, className: p.class, config: JSON.stringify(config), timeout, isDefault: p.default === true };
      const checked = await checks.at(path, () => delivery.checkProvider(input));
      if (!checked) continue;
      const module = findProviderModule(checked.className)!;
      const secrets = secretLeaves(checked.config, module.schema, 'config');
      const existing = stored.find((s) => s.type === type && s.name === name);
      // with no default of its type, the first provider created becomes it (LinOTP)
      const becomesDefault = !existing && !hasDefault && declaredDefault === undefined;
      if (becomesDefault) hasDefault = true;
      const isDefault = p.default === true || existing?.isDefault === true || becomesDefault;
      const after = { class: checked.className, timeout, default: String(isDefault), ...flatten(checked.config, 'config') };
      if (existing) {
        const same = existing.className === checked.className && existing.timeout === timeout && existing.isDefault === isDefault
          && existing.config !== undefined && sameJson(existing.config as Json, checked.config as Json);
        if (same) continue;
        // a field that was a secret before stays one: its old value is never shown
        const oldSecrets = existing.config ? secretLeaves(existing.config, module.schema, 'config') : new Set<string>();
        const before = { class: existing.className, timeout: existing.timeout, default: String(existing.isDefault), ...flatten(existing.config ?? {}, 'config') };
        plan.changes.push({ section: 'providers', label: `${type} provider ${name}`, kind: 'change', fields: diffFields(before, after, (f) => secrets.has(f) || oldSecrets.has(f)) });
      } else {
        plan.changes.push({ section: 'providers', label: `${type} provider ${name}`, kind: 'add', fields: fieldsOf(after, (f) => secrets.has(f)) });
      }
      plan.writes.push(() => delivery.setProvider(input));
    }
    for (const s of stored.filter((x) => x.type === type && declared[x.name] === undefined)) {
      if (s.managed) {
        plan.notes.push(`${type} provider ${s.name} is managed (LinOTP's managed password): config apply leaves it alone`);
        continue;
      }
      if (!prune) {
        plan.kept.push(`${type} provider ${s.name}`);
        continue;
      }
      const path = `providers.${type} (--prune ${s.name})`;
      const naming = policiesNaming(finalPolicyRows, `${type}_provider`, s.name);
      if (naming.naming.length > 0) {
        checks.refused.push({ path, error: Errors.providerRefused({ reason: `Unable to delete - provider used in policies!\n[${[...new Set(naming.naming)].sort().join(', ')}]` }) });
        continue;
      }
      if (s.isDefault && declaredDefault === undefined && Object.keys(declared).length > 0) {
        checks.refused.push({ path, error: Errors.providerRefused({ reason: `Default provider could not be deleted! Mark another ${type} provider default: true in the file` }) });
        continue;
      }
      plan.changes.push({ section: 'providers', label: `${type} provider ${s.name}`, kind: 'remove', fields: [] });
      removals.providers.push(async () => {
        const res = await delivery.deleteProvider(type, s.name);
        if (!res.ok) throw Errors.providerRefused({ reason: res.message });
      });
    }
  }

  // ---- RADIUS clients
  if (file.radius_clients) {
    const { radiusClients } = deps;
    const storedClients = await radiusClients.stored();
    const finalRanges: { name: string; range: Cidr }[] = [];
    const declaredClients = new Map<string, { input: Parameters<RadiusClientService['set']>[0]; range: Cidr }>();
    for (const [name, c] of Object.entries(file.radius_clients)) {
      const path = `radius_clients.${name}`;
      const input = { name, address: c.address, secret: radiusSecrets.get(name) ?? '', realm: c.realm ?? '', require_message_authenticator: c.require_message_authenticator ?? true };
      const checked = await checks.at(path, () => {
        const n = normalizeClient(input);
        if (storedClients.some((s) => s.name === n.name && s.source === 'config')) {
          throw Errors.invalidRadiusClient({ field: 'name', why: `client ${n.name} comes from the settings file (radius.clients): change it there` });
        }
        return n;
      });
      if (!checked) continue;
      declaredClients.set(name, { input, range: checked.range });
      finalRanges.push({ name, range: checked.range });
      const view = (v: { address: string; realm: string; require_message_authenticator: boolean; secret: string | undefined }) =>
        ({ address: v.address, secret: v.secret ?? '', realm: v.realm, require_message_authenticator: String(v.require_message_authenticator) });
      const after = view({ address: checked.address, realm: checked.realm, require_message_authenticator: checked.requireMessageAuthenticator, secret: checked.secret });
      const existing = storedClients.find((s) => s.name === checked.name);
      const secret = (f: string) => f === 'secret';
      if (existing) {
        const fields = diffFields(view(existing), after, secret);
        if (fields.length === 0) continue;
        plan.changes.push({ section: 'radius_clients', label: `RADIUS client ${name}`, kind: 'change', fields });
      } else {
        plan.changes.push({ section: 'radius_clients', label: `RADIUS client ${name}`, kind: 'add', fields: fieldsOf(after, secret) });
      }
      plan.writes.push(async () => void (await radiusClients.set(input, 'api')));
    }
    for (const s of storedClients) {
      if (declaredClients.has(s.name)) continue;
      if (s.source === 'config') {
        finalRanges.push({ name: s.name, range: normalizeClient({ ...s, secret: 'x' }).range });
        continue;
      }
      if (!prune) {
        plan.kept.push(`RADIUS client ${s.name}`);
        finalRanges.push({ name: s.name, range: normalizeClient({ ...s, secret: 'x' }).range });
        continue;
      }
      plan.changes.push({ section: 'radius_clients', label: `RADIUS client ${s.name}`, kind: 'remove', fields: [] });
      removals.radius_clients.push(async () => void (await radiusClients.remove(s.name)));
    }
    for (const [name, c] of declaredClients) {
      const other = finalRanges.find((o) => o.name !== name && sameCidr(o.range, c.range));
      if (other) checks.refused.push({ path: `radius_clients.${name}`, error: Errors.invalidRadiusClient({ field: 'address', why: `${c.input.address} is already used by client ${other.name}` }) });
    }
  }

  if (checks.refused.length > 0) throw new PlanRefused(checks.refused);
  plan.writes.push(...removals.radius_clients, ...removals.providers, ...removals.realms);
  for (const name of prunedResolvers) plan.writes.push(async () => void (await users.deleteResolver(name)));
  plan.writes.push(...removals.config);
  return plan;
}

/** Runs the writes of a plan in order (creates and updates first, then removals). */
export async function applyPlan(plan: Plan): Promise<void> {
  for (const write of plan.writes) await write();
}

/** The diff as text: one block per object, secrets as `(secret)`; "no changes" when there is nothing to do. */
export function formatPlan(plan: Plan, opts: { prune?: boolean } = {}): string {
  const out: string[] = [];
  const show = (f: FieldChange, v: string | undefined) => (v === undefined ? '(unset)' : f.secret ? SECRET_SHOWN : v === '' ? "''" : v);
  for (const c of plan.changes) {
    out.push(`${c.kind === 'add' ? '+' : c.kind === 'change' ? '~' : '-'} ${c.label}`);
    for (const f of c.fields) {
      if (c.kind === 'add') out.push(`    ${f.name}: ${show(f, f.after)}`);
      else if (f.secret) out.push(`    ${f.name}: ${f.before === undefined ? 'set' : f.after === undefined ? 'unset' : 'changed'} (secret)`);
      else out.push(`    ${f.name}: ${show(f, f.before)} -> ${show(f, f.after)}`);
    }
  }
  const count = (k: Change['kind']) => plan.changes.filter((c) => c.kind === k).length;
  out.push(plan.changes.length === 0 ? 'no changes' : `${plan.changes.length} change(s): ${count('add')} added, ${count('change')} changed, ${count('remove')} removed`);
  if (plan.kept.length > 0) out.push(`not in the file, kept${opts.prune ? '' : ' (--prune removes them)'}: ${plan.kept.join(', ')}`);
  for (const n of plan.notes) out.push(`note: ${n}`);
  return `${out.join('\n')}\n`;
}
