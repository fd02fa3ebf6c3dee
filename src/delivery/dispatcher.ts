import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { randomHex } from '../crypto/random.ts';
import { outsideUnitOfWork } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';
import type { Metrics } from '../util/metrics.ts';
import type { SendCounterRepository } from './counter-repository.ts';
import type { ProviderHealth } from './health.ts';
import type { OutboxRepository } from './outbox-repository.ts';
import { channelWords, type DispatchResult, type Outcomes } from './outcomes.ts';
import { providerKey, type ProviderCatalog } from './providers.ts';
import { FINAL_STATUSES, type OutboxRow, type OutboxStatus } from './repository.ts';
import { sendBounded } from './send.ts';
import type { ChannelType, OutgoingMessage } from './types.ts';

/** Extra lease time beyond a provider's timeout before another dispatcher may take a message over. */
const LEASE_MARGIN_MS = 15_000;

export interface DispatcherDeps {
  outbox: OutboxRepository;
  /** Only for pruning expired windows. */
  counters: SendCounterRepository;
  catalog: ProviderCatalog;
  health: ProviderHealth;
  outcomes: Outcomes;
  /** Opens the stored message text. */
  keyring: KeyRing;
  config: ConfigService;
  logger: Logger;
  clock: Clock;
  /** Counts each provider attempt by channel, provider and result. @default undefined */
  metrics?: Metrics;
}

/**
 * The only sender. Claims due outbox rows under a lease, sends each with a bounded
 * call, fails over along the provider chain (healthy providers first), records
 * every attempt, retries transient failures in later passes until the code expires,
 * and ends each message with one final state. The loop also expires overdue
 * messages, probes unhealthy providers and prunes old log rows and counters.
 */
export class Dispatcher {
  /** Identifies this dispatcher in outbox leases. */
  readonly nodeId = `${hostname().slice(0, 32)}-${process.pid}-${randomHex(4)}`;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopping = false;
  private lastPrune = 0;
  private readonly inflight = new Map<number, Promise<void>>();

  constructor(private readonly deps: DispatcherDeps) {}

  /** Starts the loop: due messages, retries, expiry, health probes, pruning. */
  start(): void {
    if (this.timer) return;
    this.stopping = false;
    const every = this.deps.config.number('DeliveryPollMs');
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
  }

  /** Stops the loop, waits for sends in flight (each bounded by its provider timeout), closes providers. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    await Promise.allSettled([...this.inflight.values()]);
    await this.deps.catalog.close();
  }

  /** Resolves when the dispatches running on this node now have finished. */
  async idle(): Promise<void> {
    await this.ticking;
    await Promise.allSettled([...this.inflight.values()]);
  }

  /** One pass of the loop (also callable from tests). */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.runTick().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    const { outbox, config } = this.deps;
    try {
      const now = this.deps.clock.now();
      for (const row of await outbox.expireOverdue(now)) this.deps.outcomes.emit(row, 'expired', { error: row.error || 'code expired before delivery' });
      if (!this.stopping) {
        const room = Math.max(0, 32 - this.inflight.size);
        if (room > 0) for (const id of await outbox.dueIds(now, room)) void this.dispatch(id);
        await this.deps.health.probeUnhealthy(now);
      }
      if (now - this.lastPrune > 600_000) {
        this.lastPrune = now;
        await this.deps.counters.pruneCounters(now);
        await outbox.pruneLog(now - config.number('DeliveryLogRetentionDays') * 86_400_000);
      }
    } catch (e) {
      this.deps.logger.error({ err: e }, 'dispatcher pass failed');
    }
  }

  /**
   * After commit: starts dispatch now and waits for the first final outcome,
   * at most `boundMs` (config DeliveryWaitMs, default 3000). A slow provider
   * gives `pending`; the dispatch goes on and its outcome is recorded.
   */
  dispatchAndWait(id: number, boundMs?: number): Promise<DispatchResult> {
    const bound = boundMs ?? this.deps.config.number('DeliveryWaitMs');
    return new Promise<DispatchResult>((resolve) => {
      let done = false;
      const finish = (r: DispatchResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        stopWaiting();
        resolve(r);
      };
      const stopWaiting = this.deps.outcomes.wait(id, finish);
      const timer = setTimeout(() => finish({ status: 'pending' }), bound);
      // Another node may own the message: look at the row now and then.
      const check = () =>
        void this.deps.outbox.getOutbox(id).then(
          (row) => {
            const r = row ? resultOf(row) : { status: 'failed' as const, error: 'unknown message' };
            if (r.status !== 'pending') finish(r);
          },
          () => undefined,
        );
      const poll = setInterval(check, Math.max(50, Math.min(250, bound)));
      check();
      void this.dispatch(id);
    });
  }

  /**
   * Dispatches one message unless this node is at it already. Outside the unit of work of the
   * request that asked for it: its lease and attempt rows are durable before the provider is called.
   */
  dispatch(id: number): Promise<void> {
    const running = this.inflight.get(id);
    if (running) return running;
    const p = outsideUnitOfWork(() => this.runDispatch(id))
      .catch((e) => this.deps.logger.error({ id, err: e }, 'dispatch failed'))
      .finally(() => this.inflight.delete(id));
    this.inflight.set(id, p);
    return p;
  }

  private chainOf(channel: ChannelType, names: string[]): string[] {
    if (names.length > 0) return [...new Set(names)];
    const d = this.deps.catalog.defaultName(channel);
    return d ? [d] : [];
  }

  private async runDispatch(id: number): Promise<void> {
    if (this.stopping) return;
    const { outbox, catalog, health, clock } = this.deps;
    let now = clock.now();
    const row = await outbox.claim(id, this.nodeId, now, LEASE_MARGIN_MS * 2);
    if (!row) return;
    const channel = row.channel as ChannelType;
    if (row.expires_at <= now) return this.finish(row, 'expired', { error: row.error || 'code expired before delivery' });
    let message: OutgoingMessage;
    try {
      message = JSON.parse(this.deps.keyring.decryptString('config', row.payload_enc)) as OutgoingMessage;
    } catch {
      return this.finish(row, 'failed', { error: 'stored message cannot be decrypted' });
    }
    const chain = this.chainOf(channel, JSON.parse(row.providers) as string[]);
    if (chain.length === 0) return this.finish(row, 'failed', { error: `no ${channel} provider configured` });
    const refused = new Set<string>(JSON.parse(row.refused) as string[]);
    const tried = new Set<string>();
    const errors: string[] = [];
    let attempts = row.attempts;

    for (;;) {
      now = clock.now();
      if (now >= row.expires_at) return this.finish(row, 'expired', { error: errors.join('; ') || 'code expired before delivery' });
      const candidates = chain.filter((n) => !refused.has(n) && !tried.has(n));
      if (candidates.length === 0) break;
      if (this.stopping) {
        await outbox.scheduleRetry(id, this.nodeId, now, errors.join('; '), now);
        return;
      }
      const states = await health.of(candidates.map((n) => providerKey(channel, n)));
      const downUntil = (n: string) => states.get(providerKey(channel, n))?.downUntil ?? 0;
      // Healthy ones in chain order; when all are backing off, the one back soonest is tried anyway.
      const pick = candidates.find((n) => downUntil(n) <= now) ?? [...candidates].sort((a, b) => downUntil(a) - downUntil(b))[0]!;
      const entry = catalog.get(channel, pick);
      const instance = entry ? catalog.instance(entry) : `unknown ${channel} provider '${pick}'`;
      if (typeof instance === 'string' || !entry) {
        refused.add(pick);
        errors.push(`${pick}: ${typeof instance === 'string' ? instance : 'unknown provider'}`);
        await outbox.setRefused(id, this.nodeId, [...refused], now);
        continue;
      }
      const begun = await outbox.beginAttempt(id, this.nodeId, attempts, pick, now, entry.timeoutMs + LEASE_MARGIN_MS);
      if (!begun) return; // lease lost: another dispatcher owns the message now
      attempts = begun.attemptNo;
      const result = await sendBounded(instance, message, entry.timeoutMs);
      this.deps.metrics?.deliveryAttempt(channel, pick, result.kind);
      now = clock.now();
      const key = providerKey(channel, pick);
      if (result.kind === 'accepted') {
        const providerMessageId = result.providerMessageId ?? '';
        const { finalized, healed } = await outbox.recordAccepted(id, this.nodeId, begun.attemptKey, pick, providerMessageId, key, now);
        if (healed) health.announceHealthy(key);
        if (finalized) this.deps.outcomes.emit(row, 'accepted', { provider: pick });
        return;
      }
      await outbox.finishAttempt(begun.attemptKey, result.kind, '', result.reason, now);
      errors.push(`${pick}: ${result.reason}`);
      const next = result.kind === 'permanent' ? 'the next provider is tried, if any' : 'retried later or the next provider is tried';
      this.deps.logger.warn(
        { id, channel, provider: pick, to: row.destination_masked, kind: result.kind, reason: result.reason },
        `${channelWords(channel)} provider '${pick}' ${result.kind === 'permanent' ? 'refused the message' : 'failed for now'}: ${result.reason} (${next})`,
      );
      if (result.kind === 'permanent') {
        refused.add(pick);
        await outbox.setRefused(id, this.nodeId, [...refused], now);
        if (result.providerFault) await health.markDown(key, result.reason, now);
      } else {
        this.deps.outcomes.transient();
        tried.add(pick);
        await health.markDown(key, result.reason, now);
      }
    }

    now = clock.now();
    const error = errors.join('; ').slice(0, 512) || 'no usable provider';
    if (chain.every((n) => refused.has(n))) return this.finish(row, 'failed', { error });
    // Some provider failed only transiently: another pass later, while the code is valid.
    const passes = Math.max(1, Math.ceil(attempts / chain.length));
    const { config } = this.deps;
    const delay = Math.min(config.number('DeliveryRetryMaxMs'), config.number('DeliveryRetryMs') * 2 ** Math.min(10, passes - 1));
    const nextAt = now + delay;
    if (nextAt >= row.expires_at) return this.finish(row, 'expired', { error });
    await outbox.scheduleRetry(id, this.nodeId, nextAt, error, now);
  }

  /** Records a final state (which wipes the stored text), then announces it. */
  private async finish(row: OutboxRow, status: 'accepted' | 'failed' | 'expired', fields: { provider?: string; providerMessageId?: string; error?: string }): Promise<void> {
    const ok = await this.deps.outbox.finalize(row.id, this.nodeId, status, fields, this.deps.clock.now());
    if (!ok) return;
    this.deps.outcomes.emit(row, status, fields);
  }
}

function resultOf(row: OutboxRow): DispatchResult {
  const status = row.status as OutboxStatus;
  if (status === 'accepted' || status === 'delivered') return { status, ...(row.provider ? { provider: row.provider } : {}) };
  if ((FINAL_STATUSES as readonly string[]).includes(status)) return { status: 'failed', error: row.error || status, ...(row.provider ? { provider: row.provider } : {}) };
  return { status: 'pending' };
}
