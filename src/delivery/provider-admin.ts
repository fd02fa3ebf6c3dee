import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { Errors } from '../errors.ts';
import type { RevisionWatcher } from '../store/revisions.ts';
import type { Clock } from '../util/clock.ts';
import { checkEmail, checkPhone, maskDestination } from '../util/phone.ts';
import { ConfigValidationError, parseConfigJson, parseTimeout, validateConfig } from './config.ts';
import type { ProviderHealth } from './health.ts';
import type { DeliveryLog } from './log.ts';
import type { ProviderRepository } from './provider-repository.ts';
import { providerContext, providerKey, providerTimeouts, type ProviderCatalog, type ProviderEntry } from './providers.ts';
import { censorConfig, findProviderModule, refuseClass, restoreCensored } from './registry.ts';
import { sendBounded } from './send.ts';
import { allowedCallingCodes, defaultCountry } from './settings.ts';
import type { ProviderRow } from './repository.ts';
import type { CaptureSink, ChannelType, ProviderModule, SendResult } from './types.ts';

/** Admin view of a provider (secrets censored). */
export interface ProviderView {
  name: string;
  type: ChannelType;
  className: string;
  timeout: string;
  config: Record<string, unknown>;
  isDefault: boolean;
  managed: boolean;
  /** Why it cannot be used, if so. */
  error?: string;
  health: { failures: number; downUntil: number; lastError: string };
}

export interface SetProviderInput {
  type: string;
  name: string;
  className: string;
  /** The config as JSON text (LinOTP's `config` parameter). */
  config: string;
  timeout: string;
  isDefault?: boolean;
  /** LinOTP `managed=<password>`: the config is hidden and changes need the same password. */
  managed?: string;
}

/**
 * Which stored policies name `provider` in `action`; `unreadable` are stored policies
 * that mention the action but do not parse, so whether they name it cannot be told.
 * Rejects when the policies cannot be read. The policy service answers it.
 */
export type PoliciesNaming = (action: 'sms_provider' | 'email_provider', provider: string) => Promise<{ naming: string[]; unreadable: string[] }>;

export interface ProviderAdminDeps {
  providers: ProviderRepository;
  catalog: ProviderCatalog;
  health: ProviderHealth;
  /** Test messages are recorded in the delivery log. */
  log: DeliveryLog;
  /** Asked before a provider is deleted; the deletion fails closed when it cannot tell. */
  policiesNaming: PoliciesNaming;
  /** Seals provider configs; hashes the `managed` password. */
  keyring: KeyRing;
  config: ConfigService;
  logger: Logger;
  clock: Clock;
  /** Demo mode only: where the capture providers keep messages. @default undefined */
  capture?: CaptureSink;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Provider administration (the /system/*Provider endpoints, LinOTP spec 6.1):
 * create, list, make default, delete and test providers, and the import of
 * LinOTP's legacy provider keys. Keeps this node's provider catalog current.
 */
export class ProviderAdmin {
  constructor(private readonly deps: ProviderAdminDeps) {}

  /** Reads the provider configuration (again). */
  async load(): Promise<void> {
    const { catalog, config, logger } = this.deps;
    await catalog.replace(await this.deps.providers.listProviders());
    if (allowedCallingCodes(config) === '*' && !config.list('DeliveryAllowedCountryCodes').includes('*')) {
      logger.warn('no DeliveryAllowedCountryCodes and no DeliveryDefaultCountry: SMS may go to any country');
    }
  }

  /** Reloads whenever any node changes a provider. */
  watch(watcher: RevisionWatcher): void {
    watcher.on('delivery_providers', () => this.load()); // a failure is logged and counted by the watcher
  }

  /**
   * Every stored provider with its config in clear (in memory only: `otpd config apply`
   * compares against it and `otpd config export` writes references for its secrets);
   * `config` is undefined when it cannot be decrypted.
   */
  async storedProviders(): Promise<{ type: ChannelType; name: string; className: string; timeout: string; isDefault: boolean; managed: boolean; config: Record<string, unknown> | undefined }[]> {
    return (await this.deps.providers.listProviders()).map((r) => {
      let config: Record<string, unknown> | undefined;
      try {
        config = JSON.parse(this.deps.keyring.decryptString('config', r.config_enc)) as Record<string, unknown>;
      } catch {
        config = undefined;
      }
      return { type: r.type as ChannelType, name: r.name, className: r.class_name, timeout: r.timeout, isDefault: r.is_default === 1, managed: r.managed_hash !== '', config };
    });
  }

  async listProviders(type: string, name?: string): Promise<ProviderView[]> {
    const rows = (await this.deps.providers.listProviders(type)).filter((r) => !name || r.name === name);
    const health = await this.deps.health.of(rows.map((r) => providerKey(r.type, r.name)));
    return rows.map((r) => {
      const entry = this.deps.catalog.get(r.type, r.name);
      const module = findProviderModule(r.class_name);
      let config: Record<string, unknown> = {};
      let error: string | undefined;
      try {
        config = JSON.parse(this.deps.keyring.decryptString('config', r.config_enc)) as Record<string, unknown>;
      } catch {
        error = 'stored config cannot be decrypted';
      }
      const h = health.get(providerKey(r.type, r.name));
      return {
        name: r.name,
        type: r.type as ChannelType,
        className: r.class_name,
        timeout: r.timeout,
        config: r.managed_hash ? {} : module ? censorConfig(module, config) : {},
        isDefault: r.is_default === 1,
        managed: r.managed_hash !== '',
        ...(error || entry?.error ? { error: error ?? entry?.error } : {}),
        health: { failures: h?.failures ?? 0, downUntil: h?.downUntil ?? 0, lastError: h?.lastError ?? '' },
      };
    });
  }

  /**
   * Every check of {@link setProvider} without writing: type, name, class, the managed
   * password, the config (placeholders restored, schema, timeouts) and one build of the
   * provider. Returns the config as it would be stored (in clear) and the stored row, if any.
   * Throws the API's errors (ConfigValidationError for config problems, see providerConfigError).
   */
  async prepareProvider(input: SetProviderInput): Promise<{ type: ChannelType; module: ProviderModule; config: Record<string, unknown>; existing: ProviderRow | undefined }> {
    const { keyring } = this.deps;
    const type = checkType(input.type);
    if (!NAME.test(input.name)) throw Errors.invalidProviderName();
    const classProblem = refuseClass(input.className, type);
    if (classProblem) throw Errors.providerRefused({ reason: classProblem });
    const module = findProviderModule(input.className)!;
    const existing = await this.deps.providers.getProvider(type, input.name);
    this.checkManaged(existing?.managed_hash ?? '', input.managed);
    const path = `providers.${type}.${input.name}.config`;
    const incoming = parseConfigJson(input.config, path);
    let stored: Record<string, unknown> | undefined;
    if (existing) {
      try {
        stored = JSON.parse(keyring.decryptString('config', existing.config_enc)) as Record<string, unknown>;
      } catch {
        stored = undefined;
      }
    }
    const config = restoreCensored(module, incoming, stored);
    validateConfig(module.schema, config, path);
    let timeouts;
    try {
      parseTimeout(input.timeout);
      timeouts = providerTimeouts({ timeout: input.timeout }, config);
    } catch (e) {
      throw e instanceof ConfigValidationError ? new ConfigValidationError(e.problems.map((p) => `providers.${type}.${input.name}.${p}`)) : e;
    }
    // Build once: semantic checks (URL, host policy, regexes, files) fail now, not at the first send.
    let built;
    try {
      built = module.create(config, providerContext(this.deps.config, this.deps.logger, timeouts, input.name, this.deps.capture));
    } catch (e) {
      if (e instanceof ConfigValidationError) throw new ConfigValidationError(e.problems.map((p) => p.replace(/^config(?=[.:])/, path)));
      throw e;
    }
    await built.close?.();
    return { type, module, config, existing };
  }

  /**
   * Creates or replaces a provider. The config JSON is parsed (errors name
   * the position), secrets sent as the placeholder keep their stored value,
   * the result is checked against the class's schema and built once
   * (prepareProvider), then stored sealed with the key ring.
   */
  async setProvider(input: SetProviderInput): Promise<void> {
    const { keyring, clock } = this.deps;
    const { type, module, config, existing } = await this.prepareProvider(input);
    await this.deps.providers.saveProvider(
      {
        type,
        name: input.name,
        class_name: module.className,
        config_enc: keyring.encrypt('config', JSON.stringify(config)),
        timeout: input.timeout,
        is_default: existing?.is_default ?? 0,
        managed_hash: input.managed ? keyring.hash('provider-managed', input.managed) : existing?.managed_hash ?? '',
        updated_at: clock.now(),
      },
      input.isDefault === true,
      clock.now(),
    );
    await this.changed();
  }

  /**
   * LinOTP's legacy provider keys (spec 1.5): `SMSProvider` + `SMSProviderConfig` and
   * `EmailProvider` + `EmailProviderConfig` become the default provider `imported_default`
   * of their type when that type has no provider yet, so an existing configuration imports
   * unchanged. The transport timeout is the config's own `timeout`/`TIMEOUT`, else 5 s:
   * LinOTP also read `SMSProviderTimeout` / `EmailBlockingTimeout` here, but in otpd those
   * keep their other meaning (code validity, resend blocking). A legacy config that does
   * not validate is logged and left alone.
   */
  async importLegacyProviders(): Promise<string[]> {
    const { config, logger } = this.deps;
    const imported: string[] = [];
    const legacy: [ChannelType, string, string][] = [
      ['sms', 'SMSProvider', 'SMSProviderConfig'],
      ['email', 'EmailProvider', 'EmailProviderConfig'],
    ];
    for (const [type, classKey, configKey] of legacy) {
      const className = config.has(classKey) ? config.get(classKey) : undefined;
      const configJson = config.has(configKey) ? config.get(configKey) : undefined;
      if (!className || !configJson) continue;
      if ((await this.deps.providers.listProviders()).some((r) => r.type === type)) continue;
      try {
        await this.setProvider({ type, name: 'imported_default', className, config: configJson, timeout: '5', isDefault: true });
        imported.push(type);
        logger.info({ type, className }, 'legacy provider configuration imported as imported_default');
      } catch (e) {
        logger.error({ type, err: e }, `legacy ${classKey}/${configKey} not imported`);
      }
    }
    return imported;
  }

  async setDefaultProvider(type: string, name: string): Promise<boolean> {
    const ok = await this.deps.providers.setDefaultProvider(checkType(type), name, this.deps.clock.now());
    if (ok) await this.changed();
    return ok;
  }

  /**
   * Deletes a provider unless LinOTP refuses it (spec 6.1): default with others left,
   * used by a policy, managed without its password. Throws `providerUsageUnknown`
   * (nothing deleted) when the policy service cannot tell whether a policy uses it.
   */
  async deleteProvider(type: string, name: string, managed?: string): Promise<{ ok: true } | { ok: false; message: string }> {
    const t = checkType(type);
    const row = await this.deps.providers.getProvider(t, name);
    if (!row) return { ok: false, message: `Unknown provider! '${name}'` };
    this.checkManaged(row.managed_hash, managed);
    const others = (await this.deps.providers.listProviders(t)).filter((r) => r.name !== name);
    if (row.is_default === 1 && others.length > 0) return { ok: false, message: 'Default provider could not be deleted!' };
    const using = await this.policiesUsing(t, name);
    if (using.length > 0) return { ok: false, message: `Unable to delete - provider used in policies!\n[${using.join(', ')}]` };
    await this.deps.providers.deleteProvider(t, name);
    await this.changed();
    return { ok: true };
  }

  /** Policy names whose `sms_provider` / `email_provider` value lists this provider; fails closed. */
  private async policiesUsing(type: ChannelType, name: string): Promise<string[]> {
    let answer: { naming: string[]; unreadable: string[] };
    try {
      answer = await this.deps.policiesNaming(`${type}_provider`, name);
    } catch (e) {
      this.deps.logger.error({ err: e, provider: providerKey(type, name) }, 'policies not readable: provider kept');
      throw Errors.providerUsageUnknown({ name, reason: 'the policies cannot be read' });
    }
    if (answer.naming.length > 0) return [...new Set(answer.naming)].sort();
    if (answer.unreadable.length > 0) {
      throw Errors.providerUsageUnknown({ name, reason: `stored policies that do not parse mention ${type}_provider: ${[...answer.unreadable].sort().join(', ')}` });
    }
    return [];
  }

  /**
   * Sends a real test message through one provider now (no outbox, no send
   * limits: an administrator's action) and records it in the delivery log.
   */
  async testProvider(type: string, name: string, to: string, text = 'otpd test message'): Promise<{ ok: boolean; status: 'accepted' | 'failed'; error?: string; providerMessageId?: string }> {
    const { catalog, clock } = this.deps;
    const t = checkType(type);
    const entry = catalog.get(t, name) ?? (await this.reloadAndGet(t, name));
    if (!entry) throw Errors.providerRefused({ reason: `Unknown provider! '${name}'` });
    let destination = to.trim();
    if (t === 'sms') {
      const pc = checkPhone(destination, { defaultCountry: defaultCountry(this.deps.config), validation: 'possible' });
      if (!pc.ok) throw Errors.invalidRecipient({ reason: pc.reason });
      destination = pc.e164;
    } else {
      const ec = checkEmail(destination);
      if (!ec.ok) throw Errors.invalidRecipient({ reason: ec.reason });
      destination = ec.address;
    }
    const instance = catalog.instance(entry);
    const startedAt = clock.now();
    const result: SendResult = typeof instance === 'string'
      ? { kind: 'permanent', reason: instance }
      : await sendBounded(instance, { channel: t, to: destination, text, subject: 'otpd test message' }, entry.timeoutMs);
    const status = result.kind === 'accepted' ? 'accepted' : 'failed';
    const error = result.kind === 'accepted' ? '' : `${result.kind}: ${result.reason}`;
    const providerMessageId = result.kind === 'accepted' ? result.providerMessageId ?? '' : '';
    await this.deps.log.recordTest({ channel: t, provider: name, maskedTo: maskDestination(t, destination), startedAt, status, providerMessageId, error });
    return result.kind === 'accepted'
      ? { ok: true, status, ...(result.providerMessageId ? { providerMessageId: result.providerMessageId } : {}) }
      : { ok: false, status, error };
  }

  private async reloadAndGet(type: ChannelType, name: string): Promise<ProviderEntry | undefined> {
    await this.load();
    return this.deps.catalog.get(type, name);
  }

  private checkManaged(storedHash: string, password: string | undefined): void {
    if (!storedHash) return;
    if (!password || !this.deps.keyring.verifyHash('provider-managed', password, storedHash)) {
      throw Errors.providerRefused({ reason: 'Not allowed to overwrite the configuration of a managed provider' });
    }
  }

  private async changed(): Promise<void> {
    await this.deps.providers.changed();
    await this.load();
  }
}

function checkType(type: string): ChannelType {
  if (type === 'sms' || type === 'email') return type;
  throw Errors.unknownProviderType({ type });
}
