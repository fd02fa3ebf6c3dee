import pino, { type Logger } from 'pino';
import { deliveryHostPolicy } from '../../src/delivery/providers.ts';
import { validateConfig } from '../../src/delivery/config.ts';
import type { OutgoingMessage, Provider, ProviderContext, ProviderModule } from '../../src/delivery/types.ts';
import { ConfigService } from '../../src/config/service.ts';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { OutboxRepository } from '../../src/delivery/outbox-repository.ts';
import type { DeliveryService, PoliciesNaming } from '../../src/delivery/service.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { createDelivery } from '../../src/services.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import type { DialectName } from '../../src/store/db.ts';

export const silentLogger = pino({ level: 'silent' });

type HostOptions = Parameters<typeof deliveryHostPolicy>[0];

export function testContext(overrides: Partial<ProviderContext> & { hostOptions?: HostOptions } = {}): ProviderContext {
  const { hostOptions, ...rest } = overrides;
  return {
    logger: silentLogger,
    timeoutMs: 3000,
    connectTimeoutMs: 2000,
    hosts: deliveryHostPolicy(hostOptions),
    templateRoot: '/nonexistent',
    ...rest,
  };
}

/** Validates the config against the module's schema (as setProvider does) and builds the provider. */
export function build(module: ProviderModule, config: Record<string, unknown>, ctx: Partial<ProviderContext> & { hostOptions?: HostOptions } = {}): Provider {
  validateConfig(module.schema, config, 'config');
  return module.create(config, testContext(ctx));
}

export function sms(to: string, text: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { channel: 'sms', to, text, ...extra };
}

export const never = () => new AbortController().signal;


export interface ServiceFixture {
  t: TestDb;
  keyring: KeyRing;
  config: ConfigService;
  clock: FakeClock;
  svc: DeliveryService;
  /** The outbox rows as the dispatcher left them. */
  outbox: OutboxRepository;
  policies: PolicyService;
  audit: { action: string; success: boolean; info?: string }[];
  /** Enqueues in its own transaction, as the challenge code would. */
  enqueue(msg: OutgoingMessage, opts?: { providers?: string[]; idempotencyKey?: string; expiresInMs?: number }): Promise<number>;
  close(): Promise<void>;
}

let keySeq = 0;

export interface FixtureOptions {
  /** @default the fixture's PolicyService answers */
  policiesNaming?: PoliciesNaming;
  /** @default silentLogger */
  logger?: Logger;
}

/** A fresh database with a DeliveryService on it (fake clock: timers are real, "now" is moved by hand). */
export async function serviceFixture(dialect: DialectName = 'sqlite', settings: Record<string, string> = {}, opts: FixtureOptions = {}): Promise<ServiceFixture> {
  const t = await createTestDb(dialect);
  const keyring = KeyRing.fromBytes();
  const config = new ConfigService(t.db, keyring);
  await config.load();
  for (const [k, v] of Object.entries(settings)) await config.set(k, v);
  const clock = new FakeClock(Date.now());
  const audit: ServiceFixture['audit'] = [];
  const policies = new PolicyService({ db: t.db, logger: silentLogger, clock });
  const svc = createDelivery({
    db: t.db, keyring, config, logger: opts.logger ?? silentLogger, clock, audit: { write: async (e) => void audit.push(e) },
    policiesNaming: opts.policiesNaming ?? ((action, name) => policies.policiesNaming(action, name)),
  });
  await svc.load();
  return {
    t, keyring, config, clock, svc, audit, policies, outbox: new OutboxRepository(t.db),
    enqueue: (msg, opts = {}) =>
      t.db.kysely.transaction().execute(async (trx) =>
        (await svc.enqueue(trx, msg, { providers: opts.providers ?? [], idempotencyKey: opts.idempotencyKey ?? `k-${process.pid}-${++keySeq}`, expiresAt: clock.now() + (opts.expiresInMs ?? 120_000) })).id),
    close: async () => {
      await svc.stop();
      await t.drop();
    },
  };
}

/** A provider config as setProvider takes it. */
export function httpProvider(name: string, url: string, extra: Record<string, unknown> = {}, timeout = '2') {
  return { type: 'sms', name, className: 'HttpSMSProvider', config: JSON.stringify({ URL: url, ...extra }), timeout };
}
