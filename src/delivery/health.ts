import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { Clock } from '../util/clock.ts';
import type { HealthState, ProviderRepository } from './provider-repository.ts';
import type { ProviderCatalog } from './providers.ts';

export interface ProviderHealthDeps {
  providers: ProviderRepository;
  catalog: ProviderCatalog;
  config: ConfigService;
  logger: Logger;
  clock: Clock;
}

/**
 * Provider health, shared by all nodes through the database: a failure puts a
 * provider into a back-off that doubles from `DeliveryBackoffMs` up to
 * `DeliveryBackoffMaxMs`; once it has ended, a probe (where the provider has one)
 * that fails extends it, one that answers lets the next real send decide. Only a
 * successful send ends the failures in a row: a probe is a cheap reachability check
 * (a TCP connect for HTTP) that a hanging or misconfigured gateway still answers.
 */
export class ProviderHealth {
  constructor(private readonly deps: ProviderHealthDeps) {}

  /** Health of the providers with these keys (`type:name`); absent = healthy. */
  of(keys: string[]): Promise<Map<string, HealthState>> {
    return this.deps.providers.health(keys);
  }

  async markDown(key: string, reason: string, now: number): Promise<void> {
    const { config } = this.deps;
    await this.deps.providers.markUnhealthy(key, reason, now, config.number('DeliveryBackoffMs'), config.number('DeliveryBackoffMaxMs'));
  }

  /** Logs that a provider with failures took a message again (its health row was reset with the send's record). */
  announceHealthy(key: string): void {
    this.deps.logger.info({ provider: key }, 'provider healthy again: a message went through');
  }

  /** Probes up to five providers whose back-off has ended (once per back-off). */
  async probeUnhealthy(now: number): Promise<void> {
    const { catalog, clock, logger } = this.deps;
    // down_until 0 with failures: probed already, waiting for the next send to decide
    const due = (await this.deps.providers.allHealth()).filter((h) => h.failures > 0 && h.downUntil > 0 && h.downUntil <= now).slice(0, 5);
    for (const h of due) {
      const sep = h.key.indexOf(':');
      const entry = catalog.get(h.key.slice(0, sep), h.key.slice(sep + 1));
      if (!entry) continue;
      const instance = catalog.instance(entry);
      if (typeof instance === 'string' || !instance.probe) continue; // half-open: the next real send decides
      const result = await instance.probe(AbortSignal.timeout(entry.connectTimeoutMs + 1000)).catch((e: Error) => ({ ok: false as const, reason: e.message }));
      if (result.ok) {
        await this.deps.providers.markProbeAnswered(h.key, clock.now());
        logger.info({ provider: h.key }, 'provider answers its health probe again: the next send decides');
      } else await this.markDown(h.key, `probe: ${result.reason}`, clock.now());
    }
  }
}
