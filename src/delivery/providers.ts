import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { ConfigValidationError, parseTimeout } from './config.ts';
import { findProviderModule } from './registry.ts';
import type { ProviderRow } from './repository.ts';
import type { CaptureSink, ChannelType, Provider, ProviderContext, ProviderModule } from './types.ts';
import { createHostPolicy, type HostPolicy } from '../util/net.ts';

export interface ProviderEntry {
  row: ProviderRow;
  type: ChannelType;
  name: string;
  module?: ProviderModule;
  /** Decrypted config JSON. */
  config: Record<string, unknown>;
  timeoutMs: number;
  connectTimeoutMs: number;
  /** Why this provider cannot be used (unknown class, unreadable config, …). */
  error?: string;
  instance?: Provider;
}

export const providerKey = (type: string, name: string) => `${type}:${name}`;

/** The host policy from the current settings (DeliveryAllowedHosts, DeliveryDenyPrivateHosts). */
export function hostPolicyFrom(config: ConfigService): HostPolicy {
  return deliveryHostPolicy({
    allowedHosts: config.list('DeliveryAllowedHosts'),
    denyPrivate: config.bool('DeliveryDenyPrivateHosts'),
  });
}

/** The provider host policy with delivery's wording (messages name the Delivery* settings). */
export function deliveryHostPolicy(options: { allowedHosts?: string[]; denyPrivate?: boolean } = {}): HostPolicy {
  return createHostPolicy({
    ...options,
    purpose: 'providers',
    settings: { allowedHosts: 'DeliveryAllowedHosts', denyPrivate: 'DeliveryDenyPrivateHosts' },
  });
}

/**
 * Timeouts of a provider: its `Timeout` attribute, overridden by a `timeout`
 * / `TIMEOUT` key in the config JSON (LinOTP passes both the same way).
 */
export function providerTimeouts(row: { timeout: string }, config: Record<string, unknown>): { totalMs: number; connectMs: number } {
  const raw = config.TIMEOUT ?? config.timeout ?? row.timeout;
  const value = Array.isArray(raw) ? raw.join(',') : raw;
  const t = parseTimeout(value === undefined ? undefined : String(value).replace(/[()\s]/g, ''));
  return { totalMs: t.totalMs, connectMs: t.connectMs };
}

/** @param capture the demo's message store, demo mode only @default undefined */
export function providerContext(config: ConfigService, logger: Logger, timeouts: { totalMs: number; connectMs: number }, name: string, capture?: CaptureSink): ProviderContext {
  return {
    logger: logger.child({ provider: name }),
    timeoutMs: timeouts.totalMs,
    connectTimeoutMs: Math.min(timeouts.connectMs, timeouts.totalMs),
    hosts: hostPolicyFrom(config),
    templateRoot: config.string('email_provider_template_root'),
    ...(capture ? { capture } : {}),
  };
}

/**
 * The configured providers of this node, decrypted and built on first use.
 * Reloaded when the `delivery_providers` revision moves; instances whose row
 * did not change are kept (an SMPP session survives an unrelated edit).
 */
export class ProviderCatalog {
  private entries = new Map<string, ProviderEntry>();

  constructor(
    private readonly keyring: KeyRing,
    private readonly config: ConfigService,
    private readonly logger: Logger,
    private readonly onInstance: (entry: ProviderEntry, instance: Provider) => void,
    /** Demo mode only: where the capture providers keep messages. @default undefined */
    private readonly capture?: CaptureSink,
  ) {}

  async replace(rows: ProviderRow[]): Promise<void> {
    const next = new Map<string, ProviderEntry>();
    const retired: Provider[] = [];
    for (const row of rows) {
      const key = providerKey(row.type, row.name);
      const old = this.entries.get(key);
      if (old && old.row.updated_at === row.updated_at && old.row.config_enc === row.config_enc && old.row.class_name === row.class_name && old.row.timeout === row.timeout) {
        next.set(key, { ...old, row });
        continue;
      }
      if (old?.instance) retired.push(old.instance);
      next.set(key, this.entryOf(row));
    }
    for (const [key, old] of this.entries) if (!next.has(key) && old.instance) retired.push(old.instance);
    this.entries = next;
    for (const p of retired) await p.close?.().catch(() => undefined);
  }

  private entryOf(row: ProviderRow): ProviderEntry {
    const base = { row, type: row.type as ChannelType, name: row.name, config: {}, timeoutMs: 5000, connectTimeoutMs: 5000 };
    const module = findProviderModule(row.class_name);
    if (!module) return { ...base, error: `unknown provider class '${row.class_name}'` };
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(this.keyring.decryptString('config', row.config_enc)) as Record<string, unknown>;
    } catch {
      return { ...base, module, error: 'stored config cannot be decrypted (wrong key file?)' };
    }
    try {
      const t = providerTimeouts(row, config);
      return { ...base, module, config, timeoutMs: t.totalMs, connectTimeoutMs: Math.min(t.connectMs, t.totalMs) };
    } catch (e) {
      return { ...base, module, config, error: (e as Error).message };
    }
  }

  get(type: string, name: string): ProviderEntry | undefined {
    return this.entries.get(providerKey(type, name));
  }

  list(type?: string): ProviderEntry[] {
    return [...this.entries.values()].filter((e) => !type || e.type === type).sort((a, b) => a.name.localeCompare(b.name));
  }

  defaultName(type: string): string | undefined {
    return this.list(type).find((e) => e.row.is_default === 1)?.name;
  }

  /** The instance of a provider, built now if needed; an error string when it cannot be built. */
  instance(entry: ProviderEntry): Provider | string {
    if (entry.error || !entry.module) return entry.error ?? 'unknown provider class';
    if (entry.instance) return entry.instance;
    try {
      const ctx = providerContext(this.config, this.logger, { totalMs: entry.timeoutMs, connectMs: entry.connectTimeoutMs }, entry.name, this.capture);
      entry.instance = entry.module.create(entry.config, ctx);
      this.onInstance(entry, entry.instance);
      return entry.instance;
    } catch (e) {
      entry.error = e instanceof ConfigValidationError ? e.problems.join('; ') : (e as Error).message;
      return entry.error;
    }
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries = new Map();
    for (const e of all) await e.instance?.close?.().catch(() => undefined);
  }
}
