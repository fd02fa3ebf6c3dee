/**
 * `otpd config export`: the stored configuration as a declarative file. Secrets are never
 * written: each becomes a reference `{env: OTPD_SECRET_…}` whose name follows from where the
 * secret sits, so the export of an instance configured from that file is the same file.
 */
import { isSecretKey } from '../config/secrets.ts';
import { findProviderModule } from '../delivery/registry.ts';
import type { DeclaredFile, DeclaredPolicy, DeclaredProvider, DeclaredRadiusClient, SecretRef } from './file.ts';
import { exportableConfigKey, secretPathsOf, type DeclaredDeps } from './plan.ts';

/** The environment variable an exported secret refers to: `OTPD_SECRET_RESOLVER_CORP_BINDPW`. */
export function secretRefName(...parts: string[]): string {
  return ['OTPD_SECRET', ...parts].map((p) => p.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_+|_+$/g, '')).filter(Boolean).join('_');
}

const ref = (...parts: string[]): SecretRef => ({ env: secretRefName(...parts) });

const byName = <T>(entries: [string, T][]): Record<string, T> =>
  Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** A copy of `node` with a reference at each of `paths`. */
function withRefs(node: unknown, paths: string[][], name: (path: string[]) => SecretRef): unknown {
  const copy = structuredClone(node) as Record<string, unknown>;
  for (const path of paths) {
    if (path.length === 0) return name(path);
    let target = copy;
    for (const part of path.slice(0, -1)) target = target[part] as Record<string, unknown>;
    target[path.at(-1)!] = name(path);
  }
  return copy;
}

/**
 * The stored configuration (config keys the file manages, resolvers, realms, providers,
 * policies, RADIUS clients from the API) as a file, and notes on what was left out
 * (managed providers, settings-file RADIUS clients, configs that cannot be decrypted).
 */
export async function exportState(deps: DeclaredDeps): Promise<{ file: DeclaredFile; notes: string[] }> {
  const notes: string[] = [];
  const { config, users, delivery, policies, radiusClients } = deps;

  const configKeys = config.entries().filter((e) => exportableConfigKey(e.key));
  const resolvers = users.resolverNames().map((name) => {
    const r = users.storedResolver(name)!;
    // sorted: the store keeps keys in the order its schema normalized them, not as given
    const values = Object.fromEntries(Object.entries(r.config).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, v]) => [k, r.secretKeys.includes(k) && v !== '' ? ref('resolver', name, k) : v]));
    return [name, { type: r.type, config: values }] as [string, { type: string; config: Record<string, string | SecretRef> }];
  });
  const defaultRealm = users.defaultRealm();
  const realms = users.realmNames().map((name) => [name, { resolvers: users.resolversOfRealm(name), ...(defaultRealm === name ? { default: true } : {}) }] as [string, { resolvers: string[]; default?: boolean }]);

  const providers: Record<'sms' | 'email', [string, DeclaredProvider][]> = { sms: [], email: [] };
  for (const p of await delivery.storedProviders()) {
    if (p.managed) {
      notes.push(`${p.type} provider ${p.name} is managed (LinOTP's managed password): not exported`);
      continue;
    }
    if (!p.config) {
      notes.push(`${p.type} provider ${p.name}: its config cannot be decrypted with this key file: not exported`);
      continue;
    }
    const module = findProviderModule(p.className);
    const paths = module ? secretPathsOf(p.config, module.schema) : [];
    const config = withRefs(p.config, paths, (path) => ref('provider', p.type, p.name, ...path)) as Record<string, unknown>;
    providers[p.type].push([p.name, { class: p.className, timeout: p.timeout, ...(p.isDefault ? { default: true } : {}), config }]);
  }

  const policyEntries = policies.list({ includeInactive: true }).map((p) => [p.name, {
    scope: p.scope, action: p.action, realm: p.realm, user: p.user, client: p.client, time: p.time, active: p.active,
  }] as [string, DeclaredPolicy]);

  const clients: [string, DeclaredRadiusClient][] = [];
  for (const c of await radiusClients.stored()) {
    if (c.source === 'config') {
      notes.push(`RADIUS client ${c.name} comes from the settings file (radius.clients): not exported`);
      continue;
    }
    clients.push([c.name, { address: c.address, secret: ref('radius', c.name), realm: c.realm, require_message_authenticator: c.require_message_authenticator }]);
  }

  const file: DeclaredFile = {
    version: 1,
    config: byName(configKeys.map((e) => [e.key, isSecretKey(e.key) || e.type === 'password' ? ref('config', e.key) : config.get(e.key) ?? ''])),
    resolvers: byName(resolvers),
    realms: byName(realms),
    providers: { sms: byName(providers.sms), email: byName(providers.email) },
    policies: byName(policyEntries),
    radius_clients: byName(clients),
  };
  return { file, notes };
}
