import type { Transaction } from 'kysely';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { randomHex } from '../crypto/random.ts';
import { ErrorCodes, OtpdError } from '../errors.ts';
import type { Db } from '../store/db.ts';
import { bumpRevision, type RevisionWatcher } from '../store/revisions.ts';
import type { Database } from '../store/schema.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import { ConfigValidationError, parseConfigJson, parseTimeout, validateConfig } from './config.ts';
import { checkEmail, checkPhone, maskDestination, phonePrefix } from '../util/phone.ts';
import { providerContext, providerKey, ProviderCatalog, providerTimeouts, type ProviderEntry } from './providers.ts';
import { censorConfig, findProviderModule, refuseClass, restoreCensored } from './registry.ts';
import { DeliveryRepository, FINAL_STATUSES, type AttemptRow, type CounterBucket, type OutboxRow, type OutboxStatus } from './repository.ts';
import { allowedCallingCodes, defaultCountry, parseLimit } from './settings.ts';
import type { ChannelType, DeliveryReceipt, OutgoingMessage, Provider, SendResult } from './types.ts';

export type { OutgoingMessage } from './types.ts';

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

export interface DeliveryDeps {
  db: Db;
  keyring: KeyRing;
  config: ConfigService;
  logger: Logger;
  clock?: Clock;
  /** Over-limit refusals and final outcomes are audited when given. */
  audit?: DeliveryAudit;
}

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

export interface DeliveryLogEntry {
  id: number;
  channel: string;
  to: string;
  status: string;
  provider: string;
  providerMessageId: string;
  error: string;
  user: string;
  realm: string;
  serial: string;
  client: string;
  createdAt: number;
  finishedAt: number | null;
  expiresAt: number;
  attempts: { no: number; provider: string; status: string; providerMessageId: string; error: string; startedAt: number; finishedAt: number | null }[];
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const LIMIT_SCOPES = [
  ['user', 'DeliveryLimitPerUser'],
  ['destination', 'DeliveryLimitPerDestination'],
  ['prefix', 'DeliveryLimitPerPrefix'],
  ['country', 'DeliveryLimitPerCountry'],
  ['client', 'DeliveryLimitPerClient'],
  ['global', 'DeliveryLimitGlobal'],
] as const;
type LimitScope = (typeof LIMIT_SCOPES)[number][0];

/** Extra lease time beyond a provider's timeout before another dispatcher may take a message over. */
const LEASE_MARGIN_MS = 15_000;

/**
 * Gets one-time codes to users: send limits and number checks before
 * anything is stored, an outbox row in the caller's transaction, a
 * dispatcher that sends with timeouts, fails over along the provider chain,
 * retries transient failures until the code expires, and records every
 * attempt. Provider modules never see the database; only this service does.
 */
export class DeliveryService {
  readonly repo: DeliveryRepository;
  private readonly catalog: ProviderCatalog;
  private readonly db: Db;
  private readonly keyring: KeyRing;
  private readonly config: ConfigService;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly audit?: DeliveryAudit;
  /** Identifies this dispatcher in outbox leases. */
  readonly nodeId = `${hostname().slice(0, 32)}-${process.pid}-${randomHex(4)}`;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopping = false;
  private lastPrune = 0;
  private readonly inflight = new Map<number, Promise<void>>();
  private readonly waiters = new Map<number, Set<(r: DispatchResult) => void>>();
  private readonly outcomeListeners = new Set<(o: DeliveryOutcome) => void>();
  private readonly counts = { accepted: 0, delivered: 0, failed: 0, expired: 0, transient: 0, refusedByLimit: {} as Record<string, number> };

  constructor(deps: DeliveryDeps) {
    this.db = deps.db;
    this.keyring = deps.keyring;
    this.config = deps.config;
    this.logger = deps.logger.child({ area: 'delivery' });
    this.clock = deps.clock ?? systemClock;
    this.audit = deps.audit;
    this.repo = new DeliveryRepository(deps.db);
    this.catalog = new ProviderCatalog(deps.keyring, deps.config, this.logger, (entry, instance) => this.attachReceipts(entry, instance));
  }

  // ---- lifecycle -------------------------------------------------------------

  /** Reads the provider configuration (again). */
  async load(): Promise<void> {
    await this.catalog.replace(await this.repo.listProviders());
    if (allowedCallingCodes(this.config) === '*' && !this.config.list('DeliveryAllowedCountryCodes').includes('*')) {
      this.logger.warn('no DeliveryAllowedCountryCodes and no DeliveryDefaultCountry: SMS may go to any country');
    }
  }

  watch(watcher: RevisionWatcher): void {
    watcher.on('delivery_providers', () => void this.load().catch((e) => this.logger.error({ err: (e as Error).message }, 'provider reload failed')));
  }

  /** Starts the dispatcher loop: due messages, retries, expiry, health probes, pruning. */
  start(): void {
    if (this.timer) return;
    this.stopping = false;
    const every = this.config.number('DeliveryPollMs');
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
    await this.catalog.close();
  }

  /** Resolves when the dispatches running on this node now have finished. */
  async idle(): Promise<void> {
    await this.ticking;
    await Promise.allSettled([...this.inflight.values()]);
  }

  /** Called when a message reaches a final state on this node (e.g. to drop the challenge of a failed SMS). */
  onOutcome(listener: (o: DeliveryOutcome) => void): () => void {
    this.outcomeListeners.add(listener);
    return () => this.outcomeListeners.delete(listener);
  }

  /** Counters for metrics: outcomes and over-limit refusals by scope. */
  metrics(): { accepted: number; delivered: number; failed: number; expired: number; transient: number; refusedByLimit: Record<string, number> } {
    return { ...this.counts, refusedByLimit: { ...this.counts.refusedByLimit } };
  }

  /** One pass of the dispatcher (also callable from tests). */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.runTick().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    try {
      const now = this.clock.now();
      for (const row of await this.repo.expireOverdue(now)) this.emit(row, 'expired', { error: row.error || 'code expired before delivery' });
      if (!this.stopping) {
        const room = Math.max(0, 32 - this.inflight.size);
        if (room > 0) for (const id of await this.repo.dueIds(now, room)) void this.dispatch(id);
        await this.probeUnhealthy(now);
      }
      if (now - this.lastPrune > 600_000) {
        this.lastPrune = now;
        await this.repo.pruneCounters(now);
        await this.repo.pruneLog(now - this.config.number('DeliveryLogRetentionDays') * 86_400_000);
      }
    } catch (e) {
      this.logger.error({ err: (e as Error).message }, 'dispatcher pass failed');
    }
  }

  // ---- limits -----------------------------------------------------------------

  /**
   * Fraud/send limits and number normalisation, before anything is stored.
   * Never throws for over-limit: returns the reason (for logs and audit; the
   * caller shows the user the same answer as for any other failure).
   */
  async checkLimits(msg: OutgoingMessage): Promise<{ ok: true; normalizedTo: string } | { ok: false; reason: string }> {
    const now = this.clock.now();
    let normalizedTo: string;
    let callingCode: string | undefined;
    if (msg.channel === 'sms') {
      const pc = checkPhone(msg.to, {
        defaultCountry: defaultCountry(this.config, msg.realm),
        validation: this.config.value('DeliveryPhoneValidation'),
        blockedPrefixes: this.config.list('DeliveryBlockedPrefixes'),
      });
      if (!pc.ok) return this.refuse(msg, 'number', pc.reason);
      const allowed = allowedCallingCodes(this.config);
      if (allowed !== '*' && !allowed.has(pc.callingCode)) return this.refuse(msg, 'country', `country calling code +${pc.callingCode} is not allowed`);
      normalizedTo = pc.e164;
      callingCode = pc.callingCode;
    } else if (msg.channel === 'email') {
      const ec = checkEmail(msg.to);
      if (!ec.ok) return this.refuse(msg, 'address', ec.reason);
      normalizedTo = ec.address;
    } else {
      return { ok: false, reason: `unknown channel ${String((msg as { channel: unknown }).channel)}` };
    }

    const keys: Record<LimitScope, string | undefined> = {
      user: msg.user ? `${msg.channel}:${msg.user.toLowerCase()}@${(msg.realm ?? '').toLowerCase()}` : undefined,
      destination: `${msg.channel}:${this.keyring.hash('delivery-destination', normalizedTo.toLowerCase()).slice(0, 40)}`,
      prefix: msg.channel === 'sms' ? this.keyring.hash('delivery-prefix', phonePrefix(normalizedTo)).slice(0, 40) : undefined,
      country: msg.channel === 'sms' ? callingCode : undefined,
      client: msg.client ? `${msg.channel}:${msg.client}` : undefined,
      global: msg.channel,
    };
    const buckets: (CounterBucket & { label: LimitScope; windowMs: number })[] = [];
    for (const [scope, configKey] of LIMIT_SCOPES) {
      const bucket = keys[scope];
      const spec = parseLimit(this.config.string(configKey));
      if (!bucket || !spec) continue;
      const windowStart = Math.floor(now / spec.windowMs) * spec.windowMs;
      buckets.push({ scope, label: scope, bucket: bucket.slice(0, 255), windowStart, max: spec.max, expiresAt: windowStart + spec.windowMs, windowMs: spec.windowMs });
    }
    const res = await this.repo.consume(buckets);
    if (!res.ok) {
      const b = buckets.find((x) => x.scope === res.bucket.scope)!;
      return this.refuse(msg, `limit:${b.label}`, `send limit per ${b.label} reached (${b.max} per ${b.windowMs / 1000} s)`);
    }
    return { ok: true, normalizedTo };
  }

  private async refuse(msg: OutgoingMessage, kind: string, reason: string): Promise<{ ok: false; reason: string }> {
    this.counts.refusedByLimit[kind] = (this.counts.refusedByLimit[kind] ?? 0) + 1;
    const masked = maskDestination(msg.channel === 'email' ? 'email' : 'sms', msg.to);
    this.logger.warn({ channel: msg.channel, to: masked, user: msg.user, realm: msg.realm, client: msg.client, kind }, `message refused: ${reason}`);
    const now = this.clock.now();
    try {
      await this.repo.insertLogOnly(newOutboxRow(msg, now, {
        idempotency_key: `refused:${randomHex(12)}`,
        destination_masked: masked,
        status: 'refused',
        error: reason.slice(0, 512),
        expires_at: now,
        finished_at: now,
      }));
      await this.audit?.write({ action: 'delivery/refused', success: false, serial: msg.serial, user: msg.user, realm: msg.realm, client: msg.client, info: `${msg.channel} to ${masked}: ${reason}` });
    } catch (e) {
      this.logger.error({ err: (e as Error).message }, 'refusal not recorded');
    }
    return { ok: false, reason };
  }

  // ---- outbox -----------------------------------------------------------------

  /**
   * Writes the outbox row inside the caller's transaction (the same one as
   * the challenge). `providers` is the ordered chain from the sms_provider /
   * email_provider policy; [] = the default provider. A second call with the
   * same idempotency key returns the first row and sends nothing more.
   */
  async enqueue(trx: Transaction<Database>, msg: OutgoingMessage, opts: { providers: string[]; idempotencyKey: string; expiresAt: number }): Promise<{ id: number }> {
    if (!opts.idempotencyKey || opts.idempotencyKey.length > 255) throw new OtpdError(ErrorCodes.parameter, 'idempotency key must be 1-255 characters');
    const providers = opts.providers.map((p) => p.trim()).filter(Boolean);
    const now = this.clock.now();
    const id = await this.repo.enqueue(trx, newOutboxRow(msg, now, {
      idempotency_key: opts.idempotencyKey,
      destination_masked: maskDestination(msg.channel, msg.to),
      destination_hash: this.keyring.hash('delivery-destination', msg.to.trim().toLowerCase()).slice(0, 64),
      payload_enc: this.keyring.encrypt('config', JSON.stringify(msg)),
      providers: JSON.stringify(providers).slice(0, 1024),
      status: 'queued',
      expires_at: opts.expiresAt,
    }));
    return { id };
  }

  /**
   * After commit: starts dispatch now and waits for the first final outcome,
   * at most `boundMs` (config DeliveryWaitMs, default 3000). A slow provider
   * gives `pending`; the dispatch goes on and its outcome is recorded.
   */
  dispatchAndWait(id: number, boundMs?: number): Promise<DispatchResult> {
    const bound = boundMs ?? this.config.number('DeliveryWaitMs');
    return new Promise<DispatchResult>((resolve) => {
      let done = false;
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const waiter = (r: DispatchResult) => finish(r);
      const finish = (r: DispatchResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        set!.delete(waiter);
        if (set!.size === 0) this.waiters.delete(id);
        resolve(r);
      };
      set.add(waiter);
      const timer = setTimeout(() => finish({ status: 'pending' }), bound);
      // Another node may own the message: look at the row now and then.
      const check = () =>
        void this.repo.getOutbox(id).then(
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

  /** Dispatches one message unless this node is at it already. */
  dispatch(id: number): Promise<void> {
    const running = this.inflight.get(id);
    if (running) return running;
    const p = this.runDispatch(id)
      .catch((e) => this.logger.error({ id, err: (e as Error).message }, 'dispatch failed'))
      .finally(() => this.inflight.delete(id));
    this.inflight.set(id, p);
    return p;
  }

  private chainOf(channel: ChannelType, names: string[]): string[] {
    if (names.length > 0) return [...new Set(names)];
    const d = this.catalog.defaultName(channel);
    return d ? [d] : [];
  }

  private async runDispatch(id: number): Promise<void> {
    if (this.stopping) return;
    let now = this.clock.now();
    const row = await this.repo.claim(id, this.nodeId, now, LEASE_MARGIN_MS * 2);
    if (!row) return;
    const channel = row.channel as ChannelType;
    if (row.expires_at <= now) return this.finish(row, 'expired', { error: row.error || 'code expired before delivery' });
    let message: OutgoingMessage;
    try {
      message = JSON.parse(this.keyring.decryptString('config', row.payload_enc)) as OutgoingMessage;
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
      now = this.clock.now();
      if (now >= row.expires_at) return this.finish(row, 'expired', { error: errors.join('; ') || 'code expired before delivery' });
      const candidates = chain.filter((n) => !refused.has(n) && !tried.has(n));
      if (candidates.length === 0) break;
      if (this.stopping) {
        await this.repo.scheduleRetry(id, this.nodeId, now, errors.join('; '), now);
        return;
      }
      const health = await this.repo.health(candidates.map((n) => providerKey(channel, n)));
      const downUntil = (n: string) => health.get(providerKey(channel, n))?.downUntil ?? 0;
      // Healthy ones in chain order; when all are backing off, the one back soonest is tried anyway.
      const pick = candidates.find((n) => downUntil(n) <= now) ?? [...candidates].sort((a, b) => downUntil(a) - downUntil(b))[0]!;
      const entry = this.catalog.get(channel, pick);
      const instance = entry ? this.catalog.instance(entry) : `unknown ${channel} provider '${pick}'`;
      if (typeof instance === 'string' || !entry) {
        refused.add(pick);
        errors.push(`${pick}: ${typeof instance === 'string' ? instance : 'unknown provider'}`);
        await this.repo.setRefused(id, this.nodeId, [...refused], now);
        continue;
      }
      const begun = await this.repo.beginAttempt(id, this.nodeId, attempts, pick, now, entry.timeoutMs + LEASE_MARGIN_MS);
      if (!begun) return; // lease lost: another dispatcher owns the message now
      attempts = begun.attemptNo;
      const result = await this.sendOnce(instance, message, entry.timeoutMs);
      now = this.clock.now();
      const key = providerKey(channel, pick);
      if (result.kind === 'accepted') {
        await this.repo.finishAttempt(begun.attemptKey, 'accepted', result.providerMessageId ?? '', '', now);
        await this.repo.markHealthy(key, now);
        return this.finish(row, 'accepted', { provider: pick, providerMessageId: result.providerMessageId ?? '', error: '' });
      }
      await this.repo.finishAttempt(begun.attemptKey, result.kind, '', result.reason, now);
      errors.push(`${pick}: ${result.reason}`);
      this.logger.info({ id, provider: pick, kind: result.kind, reason: result.reason }, 'delivery attempt failed');
      if (result.kind === 'permanent') {
        refused.add(pick);
        await this.repo.setRefused(id, this.nodeId, [...refused], now);
        if (result.providerFault) await this.markDown(key, result.reason, now);
      } else {
        this.counts.transient++;
        tried.add(pick);
        await this.markDown(key, result.reason, now);
      }
    }

    now = this.clock.now();
    const error = errors.join('; ').slice(0, 512) || 'no usable provider';
    if (chain.every((n) => refused.has(n))) return this.finish(row, 'failed', { error });
    // Some provider failed only transiently: another pass later, while the code is valid.
    const passes = Math.max(1, Math.ceil(attempts / chain.length));
    const delay = Math.min(this.config.number('DeliveryRetryMaxMs'), this.config.number('DeliveryRetryMs') * 2 ** Math.min(10, passes - 1));
    const nextAt = now + delay;
    if (nextAt >= row.expires_at) return this.finish(row, 'expired', { error });
    await this.repo.scheduleRetry(id, this.nodeId, nextAt, error, now);
  }

  private async markDown(key: string, reason: string, now: number): Promise<void> {
    await this.repo.markUnhealthy(key, reason, now, this.config.number('DeliveryBackoffMs'), this.config.number('DeliveryBackoffMaxMs'));
  }

  /** One provider call, always bounded: the provider's own timeout, then a hard stop one second later. */
  private async sendOnce(provider: Provider, message: OutgoingMessage, timeoutMs: number): Promise<SendResult> {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const hardStop = new Promise<SendResult>((resolve) => {
      timer = setTimeout(() => {
        ac.abort();
        resolve({ kind: 'transient', reason: `provider did not answer within ${timeoutMs} ms` });
      }, timeoutMs + 1000);
    });
    try {
      return await Promise.race([
        provider.send(message, ac.signal).catch((e: unknown): SendResult => ({ kind: 'transient', reason: `provider error: ${(e as Error)?.message ?? String(e)}` })),
        hardStop,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Records a final state, wipes the stored text, tells waiters, listeners and the audit. */
  private async finish(row: OutboxRow, status: 'accepted' | 'failed' | 'expired', fields: { provider?: string; providerMessageId?: string; error?: string }): Promise<void> {
    const now = this.clock.now();
    const ok = await this.repo.finalize(row.id, this.nodeId, status, fields, now);
    if (!ok) return;
    this.emit(row, status, fields);
  }

  private emit(row: OutboxRow, status: DeliveryOutcome['status'], fields: { provider?: string; error?: string }): void {
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
    for (const l of this.outcomeListeners) {
      try {
        l(outcome);
      } catch (e) {
        this.logger.error({ err: (e as Error).message }, 'outcome listener failed');
      }
    }
    const level = status === 'accepted' || status === 'delivered' ? 'info' : 'warn';
    this.logger[level]({ id: row.id, channel: row.channel, to: row.destination_masked, provider: fields.provider, status, error: fields.error }, 'delivery outcome');
    void this.audit
      ?.write({
        action: `delivery/${status}`,
        success: status === 'accepted' || status === 'delivered',
        serial: row.serial || undefined,
        user: row.user_name || undefined,
        realm: row.realm || undefined,
        client: row.client || undefined,
        info: `${row.channel} to ${row.destination_masked}${fields.provider ? ` via ${fields.provider}` : ''}${fields.error ? `: ${fields.error}` : ''}`.slice(0, 500),
      })
      .catch((e) => this.logger.error({ err: (e as Error).message }, 'delivery audit row not written'));
  }

  private attachReceipts(entry: ProviderEntry, instance: Provider): void {
    instance.onReceipt?.((r) => void this.handleReceipt(entry.type, entry.name, r).catch((e) => this.logger.error({ err: (e as Error).message }, 'receipt not recorded')));
  }

  private async handleReceipt(channel: string, provider: string, receipt: DeliveryReceipt): Promise<void> {
    const changed = await this.repo.applyReceipt(channel, provider, receipt.providerMessageId, receipt.status, receipt.detail, this.clock.now());
    for (const row of changed) this.emit(row, receipt.status, { provider, ...(receipt.status === 'failed' ? { error: receipt.detail } : {}) });
  }

  private async probeUnhealthy(now: number): Promise<void> {
    const due = (await this.repo.allHealth()).filter((h) => h.failures > 0 && h.downUntil <= now).slice(0, 5);
    for (const h of due) {
      const sep = h.key.indexOf(':');
      const entry = this.catalog.get(h.key.slice(0, sep), h.key.slice(sep + 1));
      if (!entry) continue;
      const instance = this.catalog.instance(entry);
      if (typeof instance === 'string' || !instance.probe) continue; // half-open: the next real send decides
      const result = await instance.probe(AbortSignal.timeout(entry.connectTimeoutMs + 1000)).catch((e: Error) => ({ ok: false as const, reason: e.message }));
      if (result.ok) {
        await this.repo.markHealthy(h.key, this.clock.now());
        this.logger.info({ provider: h.key }, 'provider healthy again');
      } else await this.markDown(h.key, `probe: ${result.reason}`, this.clock.now());
    }
  }

  // ---- administration (the /system/*Provider endpoints) -------------------------

  async listProviders(type: string, name?: string): Promise<ProviderView[]> {
    const rows = (await this.repo.listProviders(type)).filter((r) => !name || r.name === name);
    const health = await this.repo.health(rows.map((r) => providerKey(r.type, r.name)));
    return rows.map((r) => {
      const entry = this.catalog.get(r.type, r.name);
      const module = findProviderModule(r.class_name);
      let config: Record<string, unknown> = {};
      let error: string | undefined;
      try {
        config = JSON.parse(this.keyring.decryptString('config', r.config_enc)) as Record<string, unknown>;
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
   * Creates or replaces a provider. The config JSON is parsed (errors name
   * the position), secrets sent as the placeholder keep their stored value,
   * the result is checked against the class's schema and built once, then
   * stored sealed with the key ring.
   */
  async setProvider(input: SetProviderInput): Promise<void> {
    const type = checkType(input.type);
    if (!NAME.test(input.name)) throw new OtpdError(ErrorCodes.parameter, "Invalid parameter 'name': use 1-64 of A-Z a-z 0-9 _ . -");
    const classProblem = refuseClass(input.className, type);
    if (classProblem) throw new OtpdError(ErrorCodes.provider, classProblem);
    const module = findProviderModule(input.className)!;
    const existing = await this.repo.getProvider(type, input.name);
    this.checkManaged(existing?.managed_hash ?? '', input.managed);
    const path = `providers.${type}.${input.name}.config`;
    const incoming = parseConfigJson(input.config, path);
    let stored: Record<string, unknown> | undefined;
    if (existing) {
      try {
        stored = JSON.parse(this.keyring.decryptString('config', existing.config_enc)) as Record<string, unknown>;
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
      built = module.create(config, providerContext(this.config, this.logger, timeouts, input.name));
    } catch (e) {
      if (e instanceof ConfigValidationError) throw new ConfigValidationError(e.problems.map((p) => p.replace(/^config(?=[.:])/, path)));
      throw e;
    }
    await built.close?.();
    await this.repo.saveProvider(
      {
        type,
        name: input.name,
        class_name: module.className,
        config_enc: this.keyring.encrypt('config', JSON.stringify(config)),
        timeout: input.timeout,
        is_default: existing?.is_default ?? 0,
        managed_hash: input.managed ? this.keyring.hash('provider-managed', input.managed) : existing?.managed_hash ?? '',
        updated_at: this.clock.now(),
      },
      input.isDefault === true,
      this.clock.now(),
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
    const imported: string[] = [];
    const legacy: [ChannelType, string, string][] = [
      ['sms', 'SMSProvider', 'SMSProviderConfig'],
      ['email', 'EmailProvider', 'EmailProviderConfig'],
    ];
    for (const [type, classKey, configKey] of legacy) {
      const className = this.config.has(classKey) ? this.config.get(classKey) : undefined;
      const configJson = this.config.has(configKey) ? this.config.get(configKey) : undefined;
      if (!className || !configJson) continue;
      if ((await this.repo.listProviders()).some((r) => r.type === type)) continue;
      try {
        await this.setProvider({ type, name: 'imported_default', className, config: configJson, timeout: '5', isDefault: true });
        imported.push(type);
        this.logger.info({ type, className }, 'legacy provider configuration imported as imported_default');
      } catch (e) {
        this.logger.error({ type, err: (e as Error).message }, `legacy ${classKey}/${configKey} not imported`);
      }
    }
    return imported;
  }

  async setDefaultProvider(type: string, name: string): Promise<boolean> {
    const ok = await this.repo.setDefaultProvider(checkType(type), name, this.clock.now());
    if (ok) await this.changed();
    return ok;
  }

  /** Deletes a provider unless LinOTP refuses it (spec 6.1): default with others left, used by a policy, managed without its password. */
  async deleteProvider(type: string, name: string, managed?: string): Promise<{ ok: true } | { ok: false; message: string }> {
    const t = checkType(type);
    const row = await this.repo.getProvider(t, name);
    if (!row) return { ok: false, message: `Unknown provider! '${name}'` };
    this.checkManaged(row.managed_hash, managed);
    const others = (await this.repo.listProviders(t)).filter((r) => r.name !== name);
    if (row.is_default === 1 && others.length > 0) return { ok: false, message: 'Default provider could not be deleted!' };
    const using = await this.policiesUsing(t, name);
    if (using.length > 0) return { ok: false, message: `Unable to delete - provider used in policies!\n[${using.join(', ')}]` };
    await this.repo.deleteProvider(t, name);
    await this.changed();
    return { ok: true };
  }

  /** Policy names whose `sms_provider` / `email_provider` value lists this provider. */
  async policiesUsing(type: ChannelType, name: string): Promise<string[]> {
    const action = `${type}_provider`;
    const out: string[] = [];
    for (const p of await this.repo.policiesWithAction(action)) {
      for (const part of p.action.split(',')) {
        const eq = part.indexOf('=');
        if (eq < 0 || part.slice(0, eq).trim().replace(/^!/, '') !== action) continue;
        const names = part.slice(eq + 1).trim().replace(/^['"]|['"]$/g, '').split(/[\s;]+/).filter(Boolean);
        if (names.includes(name)) out.push(p.name);
      }
    }
    return [...new Set(out)].sort();
  }

  /**
   * Sends a real test message through one provider now (no outbox, no send
   * limits: an administrator's action) and records it in the delivery log.
   */
  async testProvider(type: string, name: string, to: string, text = 'otpd test message'): Promise<{ ok: boolean; status: 'accepted' | 'failed'; error?: string; providerMessageId?: string }> {
    const t = checkType(type);
    const entry = this.catalog.get(t, name) ?? (await this.reloadAndGet(t, name));
    if (!entry) throw new OtpdError(ErrorCodes.provider, `Unknown provider! '${name}'`);
    let destination = to.trim();
    if (t === 'sms') {
      const pc = checkPhone(destination, { defaultCountry: defaultCountry(this.config), validation: 'possible' });
      if (!pc.ok) throw new OtpdError(ErrorCodes.parameter, `Invalid parameter 'to': ${pc.reason}`);
      destination = pc.e164;
    } else {
      const ec = checkEmail(destination);
      if (!ec.ok) throw new OtpdError(ErrorCodes.parameter, `Invalid parameter 'to': ${ec.reason}`);
      destination = ec.address;
    }
    const instance = this.catalog.instance(entry);
    const now = this.clock.now();
    const result: SendResult = typeof instance === 'string'
      ? { kind: 'permanent', reason: instance }
      : await this.sendOnce(instance, { channel: t, to: destination, text, subject: 'otpd test message' }, entry.timeoutMs);
    const status = result.kind === 'accepted' ? 'accepted' : 'failed';
    const error = result.kind === 'accepted' ? '' : `${result.kind}: ${result.reason}`;
    await this.repo.insertLogOnly({
      idempotency_key: `test:${randomHex(12)}`,
      channel: t,
      destination_masked: maskDestination(t, destination),
      destination_hash: '',
      payload_enc: '',
      providers: JSON.stringify([name]),
      refused: '[]',
      status,
      attempts: 1,
      next_attempt_at: now,
      lease_owner: '',
      lease_until: 0,
      provider: name,
      provider_message_id: result.kind === 'accepted' ? (result.providerMessageId ?? '').slice(0, 255) : '',
      error: error.slice(0, 512),
      user_name: '',
      realm: '',
      serial: 'test message',
      client: '',
      created_at: now,
      updated_at: now,
      expires_at: now,
      finished_at: this.clock.now(),
    });
    return result.kind === 'accepted'
      ? { ok: true, status, ...(result.providerMessageId ? { providerMessageId: result.providerMessageId } : {}) }
      : { ok: false, status, error };
  }

  /** The delivery log: masked destinations, statuses, providers, errors; never a code. */
  async deliveryLog(filter: { status?: string; channel?: string; user?: string; realm?: string; serial?: string; since?: number; until?: number; page?: number; size?: number }): Promise<{ total: number; page: number; entries: DeliveryLogEntry[] }> {
    const size = Math.min(500, Math.max(1, filter.size ?? 50));
    const page = Math.max(1, filter.page ?? 1);
    const { rows, total } = await this.repo.log({ ...filter, offset: (page - 1) * size, limit: size });
    const attempts = await this.repo.attemptsOf(rows.map((r) => r.id));
    const byOutbox = new Map<number, AttemptRow[]>();
    for (const a of attempts) {
      const list = byOutbox.get(Number(a.outbox_id)) ?? [];
      list.push(a);
      byOutbox.set(Number(a.outbox_id), list);
    }
    return {
      total,
      page,
      entries: rows.map((r) => ({
        id: Number(r.id),
        channel: r.channel,
        to: r.destination_masked,
        status: r.status,
        provider: r.provider,
        providerMessageId: r.provider_message_id,
        error: r.error,
        user: r.user_name,
        realm: r.realm,
        serial: r.serial,
        client: r.client,
        createdAt: Number(r.created_at),
        finishedAt: r.finished_at === null ? null : Number(r.finished_at),
        expiresAt: Number(r.expires_at),
        attempts: (byOutbox.get(Number(r.id)) ?? []).map((a) => ({
          no: a.attempt_no,
          provider: a.provider,
          status: a.status,
          providerMessageId: a.provider_message_id,
          error: a.error,
          startedAt: Number(a.started_at),
          finishedAt: a.finished_at === null ? null : Number(a.finished_at),
        })),
      })),
    };
  }

  private async reloadAndGet(type: ChannelType, name: string): Promise<ProviderEntry | undefined> {
    await this.load();
    return this.catalog.get(type, name);
  }

  private checkManaged(storedHash: string, password: string | undefined): void {
    if (!storedHash) return;
    if (!password || !this.keyring.verifyHash('provider-managed', password, storedHash)) {
      throw new OtpdError(ErrorCodes.provider, 'Not allowed to overwrite the configuration of a managed provider');
    }
  }

  private async changed(): Promise<void> {
    await bumpRevision(this.db, 'delivery_providers');
    await this.load();
  }
}

function checkType(type: string): ChannelType {
  if (type === 'sms' || type === 'email') return type;
  throw new OtpdError(ErrorCodes.parameter, `Invalid parameter 'type': otpd offers sms and email providers, not '${type}'`);
}

function resultOf(row: OutboxRow): DispatchResult {
  const status = row.status as OutboxStatus;
  if (status === 'accepted' || status === 'delivered') return { status, ...(row.provider ? { provider: row.provider } : {}) };
  if ((FINAL_STATUSES as readonly string[]).includes(status)) return { status: 'failed', error: row.error || status, ...(row.provider ? { provider: row.provider } : {}) };
  return { status: 'pending' };
}

/** A new outbox/delivery-log row for `msg`: the columns every new row shares, then `fields`. */
function newOutboxRow(
  msg: OutgoingMessage,
  now: number,
  fields: Pick<OutboxRow, 'idempotency_key' | 'destination_masked' | 'status' | 'expires_at'> & Partial<Omit<OutboxRow, 'id'>>,
): Omit<OutboxRow, 'id'> {
  return {
    channel: msg.channel,
    destination_hash: '',
    payload_enc: '',
    providers: '[]',
    refused: '[]',
    attempts: 0,
    next_attempt_at: now,
    lease_owner: '',
    lease_until: 0,
    provider: '',
    provider_message_id: '',
    error: '',
    user_name: (msg.user ?? '').slice(0, 255),
    realm: (msg.realm ?? '').slice(0, 255),
    serial: (msg.serial ?? '').slice(0, 255),
    client: (msg.client ?? '').slice(0, 64),
    created_at: now,
    updated_at: now,
    finished_at: null,
    ...fields,
  };
}
