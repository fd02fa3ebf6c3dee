import type { Logger } from 'pino';
import type { Clock } from '../util/clock.ts';
import type { OutboxRepository } from './outbox-repository.ts';
import type { Outcomes } from './outcomes.ts';
import type { ProviderEntry } from './providers.ts';
import type { DeliveryReceipt, Provider } from './types.ts';

export interface ReceiptsDeps {
  outbox: OutboxRepository;
  outcomes: Outcomes;
  clock: Clock;
  logger: Logger;
}

/**
 * Delivery receipts that arrive after a message was accepted (SMPP `deliver_sm`):
 * the outbox row and its attempt move on to delivered or failed, and the outcome
 * is announced like any other. The provider only reports; this records.
 */
export class Receipts {
  constructor(private readonly deps: ReceiptsDeps) {}

  /** For ProviderCatalog: listens to the receipts of a freshly built provider instance. */
  readonly attach = (entry: ProviderEntry, instance: Provider): void => {
    instance.onReceipt?.((r) => void this.record(entry.type, entry.name, r).catch((e) => this.deps.logger.error({ err: e }, 'receipt not recorded')));
  };

  async record(channel: string, provider: string, receipt: DeliveryReceipt): Promise<void> {
    const changed = await this.deps.outbox.applyReceipt(channel, provider, receipt.providerMessageId, receipt.status, receipt.detail, this.deps.clock.now());
    for (const row of changed) this.deps.outcomes.emit(row, receipt.status, { provider, ...(receipt.status === 'failed' ? { error: receipt.detail } : {}) });
  }
}
