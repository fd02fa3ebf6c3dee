import { hostname } from 'node:os';
import { Forwarder } from './forward/forwarder.ts';
import type { Logger } from 'pino';
import { AdminService } from './admins/service.ts';
import { AuditWriter, auditChainKey } from './audit/writer.ts';
import { ConfigService } from './config/service.ts';
import { logRedactPaths } from './config/secret-fields.ts';
import { SendCounterRepository } from './delivery/counter-repository.ts';
import { Dispatcher } from './delivery/dispatcher.ts';
import { ProviderHealth } from './delivery/health.ts';
import { SendLimits } from './delivery/limits.ts';
import { DeliveryLog } from './delivery/log.ts';
import { Outbox } from './delivery/outbox.ts';
import { OutboxRepository } from './delivery/outbox-repository.ts';
import { Outcomes, type DeliveryAudit } from './delivery/outcomes.ts';
import { ProviderAdmin, type PoliciesNaming } from './delivery/provider-admin.ts';
import { ProviderRepository } from './delivery/provider-repository.ts';
import { ProviderCatalog } from './delivery/providers.ts';
import { Receipts } from './delivery/receipts.ts';
import { providerModules } from './delivery/registry.ts';
import { DeliveryService } from './delivery/service.ts';
import { RadiusClientService } from './radius/clients.ts';
import type { RadiusStats } from './radius/server.ts';
import type { Settings } from './config/settings.ts';
import { KeyRing } from './crypto/keyring.ts';
import { openDatabase, type Db } from './store/db.ts';
import { migrateToLatest } from './store/migrate.ts';
import { RevisionWatcher } from './store/revisions.ts';
import './tokens/all.ts';
import { TokenRepository } from './tokens/repository.ts';
import { TokenService } from './enrollment/tokens.ts';
import { systemClock, type Clock } from './util/clock.ts';
import { BASE_REDACT, createLogger as createProcessLogger, type LogFormat, type LogTarget } from './util/logger.ts';
import { Metrics } from './util/metrics.ts';
import { AutoEnrollment } from './enrollment/autoenroll.ts';
import { EnrollmentRepository } from './enrollment/repository.ts';
import { ChallengeRepository } from './validation/challenges.ts';
import { emailChannel, smsChannel } from './validation/oob/channels.ts';
import { OutOfBand } from './validation/oob/flow.ts';
import { AccountAttempts } from './validation/account-attempts.ts';
import { PolicyService } from './policy/service.ts';
import { UserDirectory } from './users/directory.ts';
import { resolverTypes } from './users/registry.ts';
import { ValidationService } from './validation/service.ts';
import { UserSessions } from './userservice/sessions.ts';
import { CapturedMessages } from './demo/messages.ts';
import { decideDemo, type DemoDecision } from './demo/mode.ts';
import type { CaptureSink } from './delivery/types.ts';

/**
 * Everything a request handler, the RADIUS server or the CLI needs, built once.
 * Areas add their service here (users, policies, delivery, radius) and construct
 * it in createServices().
 */
export interface Services {
  settings: Settings;
  db: Db;
  keyring: KeyRing;
  config: ConfigService;
  logger: Logger;
  clock: Clock;
  watcher: RevisionWatcher;
  audit: AuditWriter;
  admins: AdminService;
  /** Self-service sessions (`/userservice/login`). */
  userSessions: UserSessions;
  tokens: TokenService;
  challenges: ChallengeRepository;
  /** Consecutive failed authentications per account (realm + user). */
  accountAttempts: AccountAttempts;
  validation: ValidationService;
  users: UserDirectory;
  policies: PolicyService;
  /** SMS/e-mail providers, outbox and dispatcher (started by `serve` only). */
  delivery: DeliveryService;
  /** The out-of-band challenge flow and autoenrollment behind the validation service. */
  outOfBand: { oob: OutOfBand; autoenrollment: AutoEnrollment };
  /** RADIUS clients (NAS) and their shared secrets, for /system/*RadiusClient*. */
  radiusClients: RadiusClientService;
  /** Set in demo mode only (docs/demo.md): the messages the capture providers kept. */
  demo?: { messages: CapturedMessages };
  /** The running RADIUS listener's counters (set by startRadius), for /metrics. */
  radiusStats?: () => RadiusStats;
  /** This instance's Prometheus series and registry (`/metrics`). */
  metrics: Metrics;
  /** Stops timers and closes the database. */
  close(): Promise<void>;
}

/**
 * Log redaction: secrets never reach a log line, whatever a caller passes: the generic names
 * and headers of util/logger.ts and every provider and resolver config field marked `secret: true`.
 */
export const REDACT = [...new Set([...BASE_REDACT, ...logRedactPaths([...providerModules, ...resolverTypes()].flatMap((m) => m.secretKeys))])];

/**
 * The process logger, with the full redaction list; CLI commands log to stderr (fd 2) so their
 * stdout stays clean, `serve` to stdout or the OTPD_LOG_FILE file.
 * @param to @default 1 (stdout) @param format @default 'auto' (pretty on a terminal, else JSON)
 */
export function createLogger(level: string, to: LogTarget = 1, format: LogFormat = 'auto'): Logger {
  return createProcessLogger(level, to, format, REDACT);
}

export interface CreateOptions {
  settings: Settings;
  logger?: Logger;
  clock?: Clock;
  /** Migrate the database (serve, init, migrate). @default true */
  migrate?: boolean;
  /**
   * Decide whether this is a demo start (demo/mode.ts) and, when it is, wire the capture
   * providers and `services.demo`. Only `serve` asks; the demo's objects are set up or
   * removed by startServer. @default false
   */
  demo?: boolean;
}

export async function createServices(opts: CreateOptions): Promise<Services & { keyCreated: boolean; demoDecision?: DemoDecision }> {
  const { settings } = opts;
  const logger = opts.logger ?? createLogger(settings.logLevel, settings.logFile ? { file: settings.logFile } : 1, settings.logFormat);
  const clock = opts.clock ?? systemClock;
  const { keyring, created } = KeyRing.loadOrCreate(settings.keyFile);
  const metrics = new Metrics();
  const db = await openDatabase(settings.databaseUrl, { queryTimeoutMs: settings.dbQueryTimeoutMs });
  if (opts.migrate !== false) await migrateToLatest(db);
  const demoDecision = opts.demo ? await decideDemo(settings, db) : undefined;
  const demoMessages = demoDecision?.on ? new CapturedMessages({ db, keyring, clock }) : undefined;
  const config = new ConfigService(db, keyring);
  config.onRejected = (problems) => {
    for (const p of problems) logger.error({ key: p.key }, `config ${p.key} in the database is invalid (${p.problem}); keeping its previous value or the default`);
  };
  await config.load();
  if (config.unknown.length > 0) logger.warn({ keys: config.unknown }, 'stored config keys otpd does not know: nothing reads them (/system/delConfig removes them)');
  const watcher = new RevisionWatcher(db, 1000, logger);
  config.watch(watcher);
  await watcher.start();
  const userDirectory = new UserDirectory({ db, keyring, config, logger, clock, metrics });
  await userDirectory.load();
  userDirectory.watch(watcher);
  const policyService = new PolicyService({ db, logger, clock });
  await policyService.load();
  policyService.watch(watcher);
  const audit = new AuditWriter(db, clock, settings.nodeName ?? hostname(), auditChainKey(keyring, settings.dataDir), logger);
  const delivery = createDelivery({
    db, keyring, config, logger, clock, audit, metrics,
    policiesNaming: (action, name) => policyService.policiesNaming(action, name),
    capture: demoMessages?.add,
  });
  const tokens = new TokenService(new TokenRepository(db), keyring, config, clock, userDirectory, policyService);
  const challenges = new ChallengeRepository(db);
  const accountAttempts = new AccountAttempts(db);
  const oob = new OutOfBand({
    db, keyring, config, clock, logger, challenges, tokens: tokens.repository, policies: policyService, delivery, metrics,
    // a challenge whose code could not be delivered takes its autoenrolled token back
    challengeDropped: (serial: string): Promise<void> => autoenrollment.undoUnused(serial),
  });
  const autoenrollment = new AutoEnrollment({
    db, keyring, config, clock, logger, tokens, oob, challenges, enrollments: new EnrollmentRepository(db),
    users: userDirectory, policies: policyService,
  });
  const forwarder = new Forwarder(logger, clock);
  const validation = new ValidationService({
    tokens, challenges, attempts: accountAttempts, config, clock, logger, users: userDirectory, policies: policyService, metrics,
    challengeHandlers: new Map([['sms', oob.handler(smsChannel)], ['email', oob.handler(emailChannel)]]),
    noToken: autoenrollment.hook,
    forward: (req, target) => forwarder.forward(req, target),
  });
  const services: Services & { keyCreated: boolean; demoDecision?: DemoDecision } = {
    settings, db, keyring, config, logger, clock, watcher, keyCreated: created, audit, metrics, demoDecision,
    ...(demoMessages ? { demo: { messages: demoMessages } } : {}),
    admins: new AdminService(db, keyring, clock),
    userSessions: new UserSessions(db, keyring, clock),
    radiusClients: new RadiusClientService({ db, keyring, clock }),
    tokens,
    challenges,
    accountAttempts,
    policies: policyService,
    users: userDirectory,
    validation,
    delivery,
    outOfBand: { oob, autoenrollment },
    close: async () => {
      watcher.stop();
      await delivery.stop();
      await audit.settled();
      await userDirectory.close();
      await db.close();
    },
  };
  await delivery.load();
  await delivery.importLegacyProviders();
  delivery.watch(watcher);
  metrics.readFrom({
    delivery: () => delivery.metrics(),
    reloadFailures: () => watcher.failures,
    radius: () => services.radiusStats?.(),
    db: () => db.stats(),
  });
  return services;
}

export interface DeliveryDeps {
  db: Db;
  keyring: KeyRing;
  config: ConfigService;
  logger: Logger;
  clock: Clock;
  /** Over-limit refusals and final outcomes are audited when given. @default undefined */
  audit?: DeliveryAudit;
  /** The policy service's answer to "which policies name this provider" (delProvider). */
  policiesNaming: PoliciesNaming;
  /** Demo mode only: where the capture providers keep messages. @default undefined */
  capture?: CaptureSink;
  /** Provider attempts are counted here when given. @default undefined */
  metrics?: Metrics;
}

/**
 * Builds the delivery area from its modules, each with its repositories, clock and
 * logger: send limits, outbox, dispatcher (outcomes, receipts, health), provider
 * administration and the delivery log, behind the DeliveryService facade.
 */
export function createDelivery(deps: DeliveryDeps): DeliveryService {
  const { db, keyring, config, clock, audit } = deps;
  const logger = deps.logger.child({ area: 'delivery' });
  const outboxRepo = new OutboxRepository(db);
  const counters = new SendCounterRepository(db);
  const providerRepo = new ProviderRepository(db);
  const outcomes = new Outcomes({ logger, audit });
  const receipts = new Receipts({ outbox: outboxRepo, outcomes, clock, logger });
  const catalog = new ProviderCatalog(keyring, config, logger, receipts.attach, deps.capture);
  const health = new ProviderHealth({ providers: providerRepo, catalog, config, logger, clock });
  const log = new DeliveryLog({ outbox: outboxRepo, clock });
  return new DeliveryService({
    outcomes,
    log,
    limits: new SendLimits({ counters, log, keyring, config, logger, clock, audit }),
    outbox: new Outbox({ outbox: outboxRepo, keyring, clock }),
    dispatcher: new Dispatcher({ outbox: outboxRepo, counters, catalog, health, outcomes, keyring, config, logger, clock, metrics: deps.metrics }),
    providers: new ProviderAdmin({ providers: providerRepo, catalog, health, log, policiesNaming: deps.policiesNaming, keyring, config, logger, clock, capture: deps.capture }),
  });
}

/**
 * The out-of-band instances of these services: the challenge flow (sms, email) and
 * autoenrollment, both wired into the validation service by createServices(). Tests reach
 * them here (e.g. to hold parallel enrollments at the claim).
 */
export function wireOutOfBand(services: Services): { oob: OutOfBand; autoenrollment: AutoEnrollment } {
  return services.outOfBand;
}
