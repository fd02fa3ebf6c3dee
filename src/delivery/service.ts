import type { Kysely, Transaction } from 'kysely';
import type { Steps } from '../store/transaction.ts';
import type { RevisionWatcher } from '../store/revisions.ts';
import type { Database } from '../store/schema.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { LimitPlan, LimitVerdict, SendLimits } from './limits.ts';
import type { DeliveryLog, DeliveryLogEntry, DeliveryLogFilter } from './log.ts';
import type { EnqueueOptions, Outbox } from './outbox.ts';
import type { DeliveryOutcome, DispatchResult, OutcomeCounts, Outcomes } from './outcomes.ts';
import type { ProviderAdmin, ProviderView, SetProviderInput } from './provider-admin.ts';
import type { OutgoingMessage } from './types.ts';

export type { OutgoingMessage } from './types.ts';
export type { DeliveryAudit, DeliveryOutcome, DispatchResult } from './outcomes.ts';
export type { DeliveryLogEntry } from './log.ts';
export type { PoliciesNaming, ProviderView, SetProviderInput } from './provider-admin.ts';

/** The delivery modules, built and wired by the composition root (src/services.ts, createDelivery). */
export interface DeliveryParts {
  limits: SendLimits;
  outbox: Outbox;
  dispatcher: Dispatcher;
  outcomes: Outcomes;
  providers: ProviderAdmin;
  log: DeliveryLog;
}

/**
 * Gets one-time codes to users, as the rest of otpd sees it (api/, validation/oob/,
 * enrollment/, server start and stop). A facade without logic of its own over:
 * send limits and number checks before anything is stored (limits.ts), an outbox row
 * in the caller's transaction (outbox.ts), the dispatcher that sends with timeouts,
 * fails over, retries transient failures until the code expires and records every
 * attempt (dispatcher.ts, with outcomes.ts, receipts.ts, health.ts), provider
 * administration (provider-admin.ts) and the delivery log (log.ts).
 */
export class DeliveryService {
  constructor(private readonly parts: DeliveryParts) {}

  // ---- sending (limits → outbox → dispatcher) ----------------------------------

  /** Send limits and number normalisation; see SendLimits.check. */
  checkLimits(msg: OutgoingMessage): Promise<LimitVerdict> {
    return this.parts.limits.check(msg);
  }

  /** The checks of checkLimits before the count, for a caller that counts in its own atomic step; see SendLimits.plan. */
  planLimits(msg: OutgoingMessage): Promise<LimitPlan> {
    return this.parts.limits.plan(msg);
  }

  /** The count of a planned message as a step: throws when a limit is reached (see {@link limitRefusal}). */
  limitSteps(k: Kysely<Database>, plan: Extract<LimitPlan, { ok: true }>): Steps<void> {
    return this.parts.limits.countSteps(k, plan);
  }

  /**
   * What an error of a step that ran {@link limitSteps} means: a reached limit is recorded and
   * answered as a refusal; anything else is not the limits' (undefined).
   */
  limitRefusal(e: unknown, msg: OutgoingMessage, plan: Extract<LimitPlan, { ok: true }>): Promise<{ ok: false; reason: string } | undefined> {
    return this.parts.limits.refusalOf(e, msg, plan);
  }

  /** The outbox row in the caller's transaction; see Outbox.enqueue. */
  enqueue(trx: Transaction<Database>, msg: OutgoingMessage, opts: EnqueueOptions): Promise<{ id: number }> {
    return this.parts.outbox.enqueue(trx, msg, opts);
  }

  /** The same as a step of the caller's atomic step (store/transaction.ts atomicSteps). */
  enqueueSteps(k: Kysely<Database>, msg: OutgoingMessage, opts: EnqueueOptions): Steps<{ id: number }> {
    return this.parts.outbox.enqueueSteps(k, msg, opts);
  }

  /** After commit: dispatch now, wait at most the bound; see Dispatcher.dispatchAndWait. */
  dispatchAndWait(id: number, boundMs?: number): Promise<DispatchResult> {
    return this.parts.dispatcher.dispatchAndWait(id, boundMs);
  }

  /** Called when a message reaches a final state on this node (e.g. to drop the challenge of a failed SMS). */
  onOutcome(listener: (o: DeliveryOutcome) => void): () => void {
    return this.parts.outcomes.onOutcome(listener);
  }

  // ---- lifecycle ------------------------------------------------------------------

  /** Reads the provider configuration (again). */
  load(): Promise<void> {
    return this.parts.providers.load();
  }

  watch(watcher: RevisionWatcher): void {
    this.parts.providers.watch(watcher);
  }

  /** Starts the dispatcher loop (`serve` only). */
  start(): void {
    this.parts.dispatcher.start();
  }

  /** Stops the loop, waits for sends in flight, closes providers. */
  stop(): Promise<void> {
    return this.parts.dispatcher.stop();
  }

  /** Resolves when the dispatches running on this node now have finished. */
  idle(): Promise<void> {
    return this.parts.dispatcher.idle();
  }

  /** One pass of the dispatcher (also callable from tests). */
  tick(): Promise<void> {
    return this.parts.dispatcher.tick();
  }

  /** Counters for metrics: outcomes and over-limit refusals by scope. */
  metrics(): OutcomeCounts & { refusedByLimit: Record<string, number> } {
    return { ...this.parts.outcomes.metrics(), refusedByLimit: this.parts.limits.refusals() };
  }

  // ---- administration (the /system/*Provider endpoints) and the delivery log ------

  listProviders(type: string, name?: string): Promise<ProviderView[]> {
    return this.parts.providers.listProviders(type, name);
  }

  setProvider(input: SetProviderInput): Promise<void> {
    return this.parts.providers.setProvider(input);
  }

  /** Every check of setProvider without writing; the config as it would be stored (in clear) and the class's name. */
  async checkProvider(input: SetProviderInput): Promise<{ className: string; config: Record<string, unknown>; secretKeys: readonly string[] }> {
    const { module, config } = await this.parts.providers.prepareProvider(input);
    return { className: module.className, config, secretKeys: module.secretKeys };
  }

  /** Every stored provider with its config in clear (in memory only, for config apply/export). */
  storedProviders(): ReturnType<ProviderAdmin['storedProviders']> {
    return this.parts.providers.storedProviders();
  }

  importLegacyProviders(): Promise<string[]> {
    return this.parts.providers.importLegacyProviders();
  }

  setDefaultProvider(type: string, name: string): Promise<boolean> {
    return this.parts.providers.setDefaultProvider(type, name);
  }

  deleteProvider(type: string, name: string, managed?: string): Promise<{ ok: true } | { ok: false; message: string }> {
    return this.parts.providers.deleteProvider(type, name, managed);
  }

  testProvider(type: string, name: string, to: string, text?: string): Promise<{ ok: boolean; status: 'accepted' | 'failed'; error?: string; providerMessageId?: string }> {
    return this.parts.providers.testProvider(type, name, to, text);
  }

  /** The delivery log: masked destinations, statuses, providers, errors; never a code. */
  deliveryLog(filter: DeliveryLogFilter): Promise<{ total: number; page: number; entries: DeliveryLogEntry[] }> {
    return this.parts.log.list(filter);
  }
}
