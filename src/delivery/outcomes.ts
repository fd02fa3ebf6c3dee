import type { Logger } from 'pino';
import type { OutboxRow } from './repository.ts';

/** `SMS`, `e-mail`: how log lines name a channel. */
export const channelWords = (channel: string): string => (channel === 'sms' ? 'SMS' : channel === 'email' ? 'e-mail' : channel);

/** What dispatchAndWait reports. `pending` = no final outcome within the bound; sending goes on. */
export interface DispatchResult {
  status: 'accepted' | 'delivered' | 'failed' | 'pending';
  provider?: string;
  error?: string;
}

/** A message reached a final state on this node (accepted, delivered, failed, expired). */
export interface DeliveryOutcome {
  id: number;
  channel: string;
  status: 'accepted' | 'delivered' | 'failed' | 'expired';
  provider?: string;
  error?: string;
  serial?: string;
  user?: string;
  realm?: string;
}

/** Optional audit sink (src/audit/writer.ts fits). */
export interface DeliveryAudit {
  write(event: { action: string; success: boolean; serial?: string; user?: string; realm?: string; info?: string; client?: string; actionDetail?: string }): Promise<void>;
}

export interface OutcomeCounts {
  accepted: number;
  delivered: number;
  failed: number;
  expired: number;
  transient: number;
}

/**
 * Where a final state goes once it is recorded in the outbox: the callers waiting
 * in dispatchAndWait, the outcome listeners (the challenge flow drops the challenge
 * of a failed SMS), the log line, the audit, and the counters for /metrics.
 * It records nothing itself.
 */
export class Outcomes {
  private readonly waiters = new Map<number, Set<(r: DispatchResult) => void>>();
  private readonly listeners = new Set<(o: DeliveryOutcome) => void>();
  private readonly counts: OutcomeCounts = { accepted: 0, delivered: 0, failed: 0, expired: 0, transient: 0 };

  constructor(private readonly deps: { logger: Logger; audit?: DeliveryAudit }) {}

  /** Calls `waiter` with the first final result of message `id` on this node; the returned function stops waiting. */
  wait(id: number, waiter: (r: DispatchResult) => void): () => void {
    let set = this.waiters.get(id);
    if (!set) this.waiters.set(id, (set = new Set()));
    set.add(waiter);
    return () => {
      set.delete(waiter);
      if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
    };
  }

  onOutcome(listener: (o: DeliveryOutcome) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One provider attempt failed transiently (counted for metrics only). */
  transient(): void {
    this.counts.transient++;
  }

  metrics(): OutcomeCounts {
    return { ...this.counts };
  }

  /** Tells waiters, listeners, the log and the audit that `row` reached `status`. */
  emit(row: OutboxRow, status: DeliveryOutcome['status'], fields: { provider?: string; error?: string }): void {
    this.counts[status]++;
    const outcome: DeliveryOutcome = {
      id: row.id,
      channel: row.channel,
      status,
      ...(fields.provider ? { provider: fields.provider } : {}),
      ...(fields.error ? { error: fields.error } : {}),
      ...(row.serial ? { serial: row.serial } : {}),
      ...(row.user_name ? { user: row.user_name } : {}),
      ...(row.realm ? { realm: row.realm } : {}),
    };
    const result: DispatchResult =
      status === 'expired' ? { status: 'failed', error: fields.error || 'code expired before delivery' } : { status, ...(fields.provider ? { provider: fields.provider } : {}), ...(fields.error ? { error: fields.error } : {}) };
    for (const w of [...(this.waiters.get(row.id) ?? [])]) w(result);
    for (const l of this.listeners) {
      try {
        l(outcome);
      } catch (e) {
        this.deps.logger.error({ err: e }, 'outcome listener failed');
      }
    }
    const ok = status === 'accepted' || status === 'delivered';
    const words = `${channelWords(row.channel)} to ${row.destination_masked} ${status === 'expired' ? 'expired before delivery' : status}${fields.provider ? ` via provider '${fields.provider}'` : ''}${fields.error ? `: ${fields.error}` : ''}`;
    // a failure is an error: the user gets no code (unless a resend succeeds)
    this.deps.logger[ok ? 'info' : 'error']({ id: row.id, channel: row.channel, to: row.destination_masked, provider: fields.provider, status, error: fields.error }, `delivery outcome: ${words}`);
    void this.deps.audit
      ?.write({
        action: `delivery/${status}`,
        success: status === 'accepted' || status === 'delivered',
        serial: row.serial || undefined,
        user: row.user_name || undefined,
        realm: row.realm || undefined,
        client: row.client || undefined,
        info: `${row.channel} to ${row.destination_masked}${fields.provider ? ` via ${fields.provider}` : ''}${fields.error ? `: ${fields.error}` : ''}`.slice(0, 500),
      })
      .catch((e) => this.deps.logger.error({ err: e }, 'delivery audit row not written'));
  }
}
