import { hostname } from 'node:os';
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
import { BASE_REDACT, createLogger as createProcessLogger, type LogFormat } from './util/logger.ts';
import { AutoEnrollment } from './enrollment/autoenroll.ts';
import { EnrollmentRepository } from './enrollment/repository.ts';
import { ChallengeRepository } from './validation/challenges.ts';
import { emailChannel, smsChannel } from './validation/oob/channels.ts';
import { OutOfBand } from './validation/oob/flow.ts';
import { AccountAttempts } from './validation/account-attempts.ts';
import { noPolicies, type UserPort } from './validation/ports.ts';
import { PolicyService } from './policy/service.ts';
import { UserDirectory } from './users/directory.ts';
import { resolverTypes } from './users/registry.ts';
import { ValidationService } from './validation/service.ts';

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
  tokens: TokenService;
  challenges: ChallengeRepository;
  /** Consecutive failed authentications per account (realm + user). */
  accountAttempts: AccountAttempts;
  validation: ValidationService;
  users: UserDirectory;
  policies: PolicyService;
  /** SMS/e-mail providers, outbox and dispatcher (started by `serve` only). */
  delivery: DeliveryService;
  /** RADIUS clients (NAS) and their shared secrets, for /system/*RadiusClient*. */
  radiusClients: RadiusClientService;
  /** The running RADIUS listener's counters (set by startRadius), for /metrics. */
  radiusStats?: () => RadiusStats;
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
 * stdout stays clean. @param format @default 'auto' (pretty on a terminal, else JSON)
 */
export function createLogger(level: string, fd: 1 | 2 = 1, format: LogFormat = 'auto'): Logger {
  return createProcessLogger(level, fd, format, REDACT);
}

export interface CreateOptions {
  settings: Settings;
  logger?: Logger;
  clock?: Clock;
  /** Migrate the database (serve, init, migrate). @default true */
  migrate?: boolean;
}

export async function createServices(opts: CreateOptions): Promise<Services & { keyCreated: boolean }> {
  const { settings } = opts;
  const logger = opts.logger ?? createLogger(settings.logLevel, 1, settings.logFormat);
  const clock = opts.clock ?? systemClock;
  const { keyring, created } = KeyRing.loadOrCreate(settings.keyFile);
  const db = await openDatabase(settings.databaseUrl);
  if (opts.migrate !== false) await migrateToLatest(db);
  const config = new ConfigService(db, keyring);
  config.onRejected = (problems) => {
    for (const p of problems) logger.error({ key: p.key }, `config ${p.key} in the database is invalid (${p.problem}); keeping its previous value or the default`);
  };
  await config.load();
  if (config.unknown.length > 0) logger.warn({ keys: config.unknown }, 'stored config keys otpd does not know: nothing reads them (/system/delConfig removes them)');
  const watcher = new RevisionWatcher(db, 1000, logger);
  config.watch(watcher);
  await watcher.start();
  const userDirectory = new UserDirectory({ db, keyring, config, logger, clock });
  await userDirectory.load();
  userDirectory.watch(watcher);
  const policyService = new PolicyService({ db, logger, clock });
  await policyService.load();
  policyService.watch(watcher);
  const services = {} as Services & { keyCreated: boolean };
  const users = (): UserPort | undefined => services.users;
  const policies = () => services.policies ?? noPolicies;
  const tokens = new TokenService(new TokenRepository(db), keyring, config, clock, users, policies);
  const challenges = new ChallengeRepository(db);
  const accountAttempts = new AccountAttempts(db);
  Object.assign(services, {
    settings, db, keyring, config, logger, clock, watcher, keyCreated: created,
    audit: new AuditWriter(db, clock, settings.nodeName ?? hostname(), auditChainKey(keyring, settings.dataDir), logger),
    admins: new AdminService(db, keyring, clock),
    radiusClients: new RadiusClientService({ db, keyring, clock }),
    tokens,
    challenges,
    accountAttempts,
    policies: policyService,
    users: userDirectory,
    validation: new ValidationService(tokens, challenges, accountAttempts, config, clock, logger, users, policies),
    close: async () => {
      watcher.stop();
      await services.delivery.stop();
      await services.audit.settled();
      await userDirectory.close();
      await db.close();
    },
  });
  services.delivery = createDelivery({
    db, keyring, config, logger, clock, audit: services.audit,
    policiesNaming: (action, name) => policyService.policiesNaming(action, name),
  });
  await services.delivery.load();
  await services.delivery.importLegacyProviders();
  services.delivery.watch(watcher);
  wireOutOfBand(services);
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
  const catalog = new ProviderCatalog(keyring, config, logger, receipts.attach);
  const health = new ProviderHealth({ providers: providerRepo, catalog, config, logger, clock });
  const log = new DeliveryLog({ outbox: outboxRepo, clock });
  return new DeliveryService({
    outcomes,
    log,
    limits: new SendLimits({ counters, log, keyring, config, logger, clock, audit }),
    outbox: new Outbox({ outbox: outboxRepo, keyring, clock }),
    dispatcher: new Dispatcher({ outbox: outboxRepo, counters, catalog, health, outcomes, keyring, config, logger, clock }),
    providers: new ProviderAdmin({ providers: providerRepo, catalog, health, log, policiesNaming: deps.policiesNaming, keyring, config, logger, clock }),
  });
}

/**
 * Plugs SMS/e-mail challenges and autoenrollment into the validation service.
 * Called once at the end of createServices() (tests may call it again to reach
 * the instances); the delivery layer is looked up at use, so it may be attached later.
 */
export function wireOutOfBand(services: Services): { oob: OutOfBand; autoenrollment: AutoEnrollment } {
  const policies = () => services.policies ?? noPolicies;
  const oob = new OutOfBand({
    db: services.db, keyring: services.keyring, config: services.config, clock: services.clock, logger: services.logger,
    challenges: services.challenges, tokens: services.tokens.repository, policies, delivery: () => services.delivery,
    challengeDropped: (serial: string): Promise<void> => auto.undoUnused(serial),
  });
  services.validation.challengeHandlers.set('sms', oob.handler(smsChannel));
  services.validation.challengeHandlers.set('email', oob.handler(emailChannel));
  const auto = new AutoEnrollment({
    db: services.db, keyring: services.keyring, config: services.config, clock: services.clock, logger: services.logger,
    tokens: services.tokens, oob, challenges: services.challenges, enrollments: new EnrollmentRepository(services.db),
    users: () => services.users, policies,
  });
  services.validation.noTokenHook = auto.hook;
  return { oob, autoenrollment: auto };
}
