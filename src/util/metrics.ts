import { createRequire } from 'node:module';
import type { Counter, Histogram, Registry } from 'prom-client';

type PromClient = typeof import('prom-client');
/**
 * prom-client is loaded when an instance starts serving ({@link Metrics.start}, from the HTTP
 * app) or first counts: a CLI command builds the services too, and pays neither for loading it
 * (tens of ms) nor for the process monitors (event-loop delay, GC observer).
 */
const loadPromClient = (): PromClient => createRequire(import.meta.url)('prom-client') as PromClient;

/**
 * What the Prometheus series of `/metrics` read from modules that keep their own counts
 * (delivery outcomes and send-limit refusals, failed reloads, the RADIUS listener, the
 * database). Structural types, so this helper imports no domain module.
 */
export interface MetricSources {
  /** Final (or, for `transient`, per attempt) message outcomes and refusals by limit kind. */
  delivery?: () => { accepted: number; delivered: number; failed: number; expired: number; transient: number; refusedByLimit: Record<string, number> };
  /** Failed re-reads of shared state by what (config, policies, users, …). */
  reloadFailures?: () => ReadonlyMap<string, number>;
  /** The RADIUS listener's counters; undefined while no listener runs. */
  radius?: () => { accepted: number; rejected: number; challenged: number; duplicates: number; dropped: Record<string, number> } | undefined;
  /** What the database layer can report of its connections. */
  db?: () => DbMetrics;
}

/** The database layer's state: a connection pool (PostgreSQL, MariaDB) or SQLite's group commit. */
export interface DbMetrics {
  pool?: { total: number; idle: number; waiting: number; max: number };
  sqlite?: { waitingStatements: number; commits: number; groupedWrites: number };
}

/** How a validation ended for the caller (validation/answer.ts). */
export type ValidationResult = 'accept' | 'challenge' | 'reject' | 'unavailable';

/** The user-store calls that reach a store (cache hits do not). */
export type UserStoreOperation = 'lookup' | 'byId' | 'checkPassword' | 'search';

/** Reloads shown even before one fails, so an alert rule has a series to watch. */
const RELOADED = ['config', 'policies', 'users', 'delivery_providers', 'poll'];
const DELIVERY_STATUSES = ['accepted', 'delivered', 'failed', 'expired', 'transient'] as const;
const RADIUS_RESULTS = ['accepted', 'rejected', 'challenged', 'duplicates'] as const;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/**
 * The Prometheus series of one otpd instance, in its own registry: several instances in
 * one process (tests) never share or collide in prom-client's global registry.
 *
 * Labels stay bounded: route patterns (never a raw URL), reason codes, token and resolver
 * types, provider and resolver names an administrator configured. Never a user name, a
 * serial, an address or a secret.
 */
export class Metrics {
  private made: Series | undefined;
  private sources: MetricSources = {};

  /** @param opts.process Node.js process series (CPU, memory, event loop, GC). @default true */
  constructor(private readonly opts: { process?: boolean } = {}) {}

  private get series(): Series {
    this.made ??= new Series(loadPromClient(), this.opts.process !== false, () => this.sources);
    return this.made;
  }

  /** This instance's registry (prom-client is loaded on first use). */
  get registry(): Registry {
    return this.series.registry;
  }

  /** Loads prom-client and starts the process series now (the HTTP app calls it when it is built). */
  start(): void {
    void this.series;
  }

  /** Where the series kept by other modules are read at scrape time (src/services.ts wires them). */
  readFrom(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
    if (this.made && sources.db) this.made.defineDbSeries(sources.db);
  }

  /** The Prometheus text exposition of every series. */
  async text(): Promise<{ body: string; contentType: string }> {
    const { registry } = this.series;
    return { body: await registry.metrics(), contentType: registry.contentType };
  }

  /**
   * One answered HTTP request. `route` is the route pattern Fastify matched (undefined: none
   * matched, counted as `unmatched`); `envelope` is the LinOTP envelope's `result.status`.
   */
  httpRequest(r: { route: string | undefined; method: string; code: number; envelope: boolean | undefined; seconds: number }): void {
    const route = r.route ?? 'unmatched';
    const method = METHODS.has(r.method) ? r.method : 'other';
    const envelope = r.envelope === undefined ? 'none' : String(r.envelope);
    this.series.httpRequests.inc({ route, method, code: String(r.code), envelope_status: envelope });
    this.series.httpDuration.observe({ route, method, envelope_status: envelope }, r.seconds);
  }

  validation(reason: string, result: ValidationResult): void {
    this.series.validations.inc({ reason, result });
  }

  challengeCreated(type: string): void {
    this.series.challengesCreated.inc({ type });
  }

  challengeAnswered(type: string, result: 'valid' | 'wrong'): void {
    this.series.challengesAnswered.inc({ type, result });
  }

  deliveryAttempt(channel: string, provider: string, result: 'accepted' | 'transient' | 'permanent'): void {
    this.series.deliveryAttempts.inc({ channel, provider, result });
  }

  /** Times one user-store call; a thrown error is counted and rethrown. */
  async userStoreCall<T>(labels: { resolver: string; type: string; operation: UserStoreOperation }, call: () => Promise<T>): Promise<T> {
    const { userStoreDuration, userStoreErrors } = this.series;
    const end = userStoreDuration.startTimer(labels);
    try {
      return await call();
    } catch (e) {
      userStoreErrors.inc(labels);
      throw e;
    } finally {
      end();
    }
  }
}

/** The prom-client objects of one instance. */
class Series {
  readonly registry: Registry;
  readonly httpRequests: Counter<'route' | 'method' | 'code' | 'envelope_status'>;
  readonly httpDuration: Histogram<'route' | 'method' | 'envelope_status'>;
  readonly validations: Counter<'reason' | 'result'>;
  readonly challengesCreated: Counter<'type'>;
  readonly challengesAnswered: Counter<'type' | 'result'>;
  readonly deliveryAttempts: Counter<'channel' | 'provider' | 'result'>;
  readonly userStoreDuration: Histogram<'resolver' | 'type' | 'operation'>;
  readonly userStoreErrors: Counter<'resolver' | 'type' | 'operation'>;
  private dbDefined = false;

  constructor(private readonly prom: PromClient, processSeries: boolean, private readonly sources: () => MetricSources) {
    const { Counter, Histogram } = prom;
    this.registry = new prom.Registry();
    const registers = [this.registry];
    if (processSeries) prom.collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({
      name: 'otpd_http_requests_total', registers,
      help: 'HTTP requests by route pattern, method, HTTP status code and LinOTP envelope status (true, false; none for answers outside the envelope).',
      labelNames: ['route', 'method', 'code', 'envelope_status'],
    });
    this.httpDuration = new Histogram({
      name: 'otpd_http_request_duration_seconds', registers,
      help: 'Time from the request to the answer, by route pattern, method and envelope status.',
      labelNames: ['route', 'method', 'envelope_status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.validations = new Counter({
      name: 'otpd_validation_total', registers,
      help: 'Authentications (HTTP and RADIUS) by reason code (docs/api.md, "Reason codes") and result (accept, challenge, reject, unavailable).',
      labelNames: ['reason', 'result'],
    });
    this.challengesCreated = new Counter({
      name: 'otpd_challenges_created_total', registers,
      help: 'Challenges created, by token type (sms and email ones after their row committed).',
      labelNames: ['type'],
    });
    this.challengesAnswered = new Counter({
      name: 'otpd_challenges_answered_total', registers,
      help: 'Answers to open challenges by token type and result: valid (the challenge closed with a success) or wrong (counted against its attempt cap).',
      labelNames: ['type', 'result'],
    });
    this.deliveryAttempts = new Counter({
      name: 'otpd_delivery_attempts_total', registers,
      help: 'Provider attempts to send a message, by channel, provider and result (accepted, transient, permanent).',
      labelNames: ['channel', 'provider', 'result'],
    });
    this.userStoreDuration = new Histogram({
      name: 'otpd_user_store_request_duration_seconds', registers,
      help: 'User-store calls that reached the store (cache hits do not), by resolver, resolver type and operation; failed calls included.',
      labelNames: ['resolver', 'type', 'operation'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.userStoreErrors = new Counter({
      name: 'otpd_user_store_errors_total', registers,
      help: 'User-store calls that failed (store unreachable, timeout, query error), by resolver, resolver type and operation.',
      labelNames: ['resolver', 'type', 'operation'],
    });
    this.definePulledSeries();
    const db = sources().db;
    if (db) this.defineDbSeries(db);
  }


  /**
   * A series whose values another module keeps: `read` gives every sample at scrape time
   * (labels and value); a series with no sample shows only its HELP and TYPE lines.
   */
  private pulled(type: 'counter' | 'gauge', name: string, help: string, labelNames: string[], read: () => [Record<string, string>, number][]): void {
    const config = { name, help, labelNames, registers: [this.registry] };
    if (type === 'counter') {
      new this.prom.Counter({ ...config, collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      } });
    } else {
      new this.prom.Gauge({ ...config, collect() {
        this.reset();
        for (const [labels, value] of read()) this.set(labels, value);
      } });
    }
  }

  /** Series whose values other modules keep: read at scrape time from {@link MetricSources}. */
  private definePulledSeries(): void {
    const { sources } = this;
    this.pulled('counter', 'otpd_delivery_messages_total', 'Out-of-band messages by final or intermediate outcome.', ['status'], () => {
      const d = sources().delivery?.();
      return DELIVERY_STATUSES.map((status) => [{ status }, d?.[status] ?? 0]);
    });
    this.pulled('counter', 'otpd_delivery_refused_by_limit_total',
      'Messages refused by a send limit or destination rule, by limit (limit:<scope>, number, country, address).', ['limit'],
      () => Object.entries(sources().delivery?.().refusedByLimit ?? {}).map(([limit, n]) => [{ limit }, n]));
    this.pulled('counter', 'otpd_reload_failures_total',
      'Failed re-reads of shared state another node changed (config, policies, users, …; poll: the revisions table), by what.', ['what'], () => {
        const failures = sources().reloadFailures?.() ?? new Map<string, number>();
        return [...new Set([...RELOADED, ...failures.keys()])].map((what) => [{ what }, failures.get(what) ?? 0]);
      });
    this.pulled('counter', 'otpd_radius_requests_total',
      'RADIUS Access-Requests by answer (duplicates: retransmissions answered from the duplicate cache).', ['result'], () => {
        const r = sources().radius?.();
        return r ? RADIUS_RESULTS.map((result) => [{ result }, r[result]]) : [];
      });
    this.pulled('counter', 'otpd_radius_dropped_total', 'RADIUS packets dropped without an answer, by reason.', ['reason'],
      () => Object.entries(sources().radius?.()?.dropped ?? {}).map(([reason, n]) => [{ reason }, n]));
  }

  /**
   * The database's series, only those of its kind: pool series for PostgreSQL/MariaDB,
   * group-commit series for SQLite (a pool gauge stuck at 0 on SQLite would mislead).
   */
  defineDbSeries(db: () => DbMetrics): void {
    if (this.dbDefined) return;
    this.dbDefined = true;
    const kind = db();
    const pool = (pick: (p: NonNullable<DbMetrics['pool']>) => [Record<string, string>, number][]) => () => {
      const p = db().pool;
      return p ? pick(p) : [];
    };
    const sqlite = (pick: (s: NonNullable<DbMetrics['sqlite']>) => number) => (): [Record<string, string>, number][] => {
      const s = db().sqlite;
      return s ? [[{}, pick(s)]] : [];
    };
    if (kind.pool) {
      this.pulled('gauge', 'otpd_db_pool_connections', 'PostgreSQL/MariaDB pool connections by state (in_use, idle).', ['state'],
        pool((p) => [[{ state: 'in_use' }, p.total - p.idle], [{ state: 'idle' }, p.idle]]));
      this.pulled('gauge', 'otpd_db_pool_max_connections', 'PostgreSQL/MariaDB pool size limit.', [], pool((p) => [[{}, p.max]]));
      this.pulled('gauge', 'otpd_db_pool_waiting_requests', 'Queries waiting for a free PostgreSQL/MariaDB pool connection.', [], pool((p) => [[{}, p.waiting]]));
    }
    if (kind.sqlite) {
      this.pulled('gauge', 'otpd_db_sqlite_waiting_statements', 'SQLite statements queued behind an explicit transaction (the group commit queue).', [],
        sqlite((s) => s.waitingStatements));
      this.pulled('counter', 'otpd_db_sqlite_group_commits_total', 'SQLite group commits (one COMMIT for the writes of one event-loop turn).', [],
        sqlite((s) => s.commits));
      this.pulled('counter', 'otpd_db_sqlite_group_writes_total',
        'SQLite writes committed in groups (divided by otpd_db_sqlite_group_commits_total: the mean group size).', [], sqlite((s) => s.groupedWrites));
    }
  }
}
