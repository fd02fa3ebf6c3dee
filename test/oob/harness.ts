/**
 * A full otpd for out-of-band tests: real slapd with the fixture users, a real
 * SMTP sink and a real HTTP SMS gateway on loopback, the app driven through
 * app.inject(), SQLite in a temp dir and a FakeClock.
 *
 *   const env = await startOobEnv();          // once per file (slapd, sink, gateway)
 *   const app = await env.app();              // fresh database per test
 */
import type { Logger } from 'pino';
import type { DeliveryService } from '../../src/delivery/service.ts';
import type { Services } from '../../src/services.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { HttpGateway, type GatewayAnswer, type GatewayRequest } from '../fixtures/http-gateway.ts';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { SmtpSink, type ReceivedMail, type SmtpSinkOptions } from '../fixtures/smtp-sink.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { captureLogs } from '../helpers/logs.ts';
import { waitFor } from '../helpers/wait.ts';
import type { DialectName } from '../../src/store/db.ts';

export const REALM = 'myrealm';

export interface AppOptions {
  config?: Record<string, string>;
  /** Set up the SMTP and HTTP providers. @default true */
  providers?: boolean;
  /** @default 'sqlite' */
  dialect?: DialectName;
}

export interface OobEnv {
  ldap: Slapd;
  smtp: SmtpSink;
  /** Mutable: e.g. `rejectRecipient` makes the sink answer 550 from now on. */
  smtpOptions: SmtpSinkOptions;
  gateway: HttpGateway;
  /** What the gateway answers; default 200 "OK". */
  gatewayAnswer: (req: GatewayRequest) => GatewayAnswer;
  app(opts?: AppOptions): Promise<OobApp>;
  /** Runs `fn` on a fresh app (gateway answering 200) and closes it afterwards. */
  withApp(fn: (app: OobApp) => Promise<void>, opts?: AppOptions): Promise<void>;
  close(): Promise<void>;
}

/** /admin/init that must succeed; returns the serial. */
export async function initToken(app: OobApp, form: Record<string, string>): Promise<string> {
  const res = await app.t.admin('/admin/init', form);
  if (res.json?.result?.value !== true) throw new Error(`/admin/init: ${res.body}`);
  return res.json.detail.serial as string;
}

export interface OobApp {
  t: TestApp;
  services: Services;
  clock: FakeClock;
  delivery: DeliveryService;
  /** POST /validate/check (form). */
  check(form: Record<string, string>): Promise<{ status: number; json: any; body: string }>;
  /** Every log line written so far (level debug and up), as JSON text, one line each. */
  logs: string[];
  policy(name: string, scope: string, action: string, extra?: { user?: string; realm?: string; client?: string }): Promise<void>;
  config(values: Record<string, string>): Promise<void>;
  /** Mails / SMS requests that arrived since this app started. */
  mails(): ReceivedMail[];
  sms(): GatewayRequest[];
  /** Waits until `count` mails (since start) arrived, returns the code in the newest. */
  mailCode(count?: number): Promise<string>;
  smsCode(count?: number): Promise<string>;
  tokensOf(login: string): Promise<{ serial: string; type: string; fail_count: number; token_info: string; pin_hash: string; description: string }[]>;
  close(): Promise<void>;
}

/** The one-time code in an SMS text or a mail body (the body is after the header block). */
export function codeIn(text: string): string {
  const m = /(?:^|\D)(\d{6,10})(?:\D|$)/.exec(text);
  if (!m) throw new Error(`no code in ${JSON.stringify(text.slice(0, 200))}`);
  return m[1]!;
}

export function mailBody(mail: ReceivedMail): string {
  const i = mail.raw.indexOf('\r\n\r\n');
  return i < 0 ? mail.raw : mail.raw.slice(i + 4);
}

export async function startOobEnv(): Promise<OobEnv> {
  const ldap = await startSlapd();
  const smtpOptions: SmtpSinkOptions = {};
  const smtp = await new SmtpSink(smtpOptions).start();
  const env = {
    ldap, smtp, smtpOptions,
    gatewayAnswer: (() => ({})) as OobEnv['gatewayAnswer'],
  } as OobEnv;
  env.gateway = await new HttpGateway({ respond: (req) => env.gatewayAnswer(req) }).start();
  env.app = (opts = {}) => startOobApp(env, opts);
  env.withApp = async (fn, opts) => {
    env.gatewayAnswer = () => ({});
    const app = await env.app(opts);
    try {
      await fn(app);
    } finally {
      await app.close();
    }
  };
  env.close = async () => {
    await env.gateway.stop();
    await smtp.stop();
    await ldap.dispose();
  };
  return env;
}

async function startOobApp(env: OobEnv, opts: AppOptions): Promise<OobApp> {
  const clock = new FakeClock(Date.now());
  // otpd's own logger options (redaction, serializers, request ids), into memory
  const { logger, raw: logs } = captureLogs('debug');
  const t = await startApp(clock, logger, opts.dialect ?? 'sqlite');
  const services = t.services;
  const delivery = services.delivery;
  const config = async (values: Record<string, string>) => {
    for (const [k, v] of Object.entries(values)) await services.config.set(k, v);
  };
  // Fixture numbers are valid ones in two countries (+1 201 555 01xx, +49 151…): any country.
  await config({ DeliveryAllowedCountryCodes: '*', ...opts.config });
  for (const [path, form] of [
    ['/system/setResolver', {
      name: 'ldapusers', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: env.ldap.url, LDAPBASE: FIXTURE_BASE,
      BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '3',
    }],
    ['/system/setRealm', { realm: REALM, resolvers: 'useridresolver.LDAPIdResolver.IdResolver.ldapusers' }],
    ['/system/setDefaultRealm', { realm: REALM }],
  ] as const) {
    const res = await t.admin(path, form);
    if (res.json?.result?.value !== true) throw new Error(`${path}: ${res.body}`);
  }
  if (opts.providers !== false) {
    await delivery.setProvider({
      type: 'email', name: 'mail', className: 'SMTPEmailProvider', timeout: '3', isDefault: true,
      config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: env.smtp.port, EMAIL_FROM: 'otpd@example.org', EMAIL_SUBJECT: 'Your OTP' }),
    });
    await delivery.setProvider({
      type: 'sms', name: 'gateway', className: 'HttpSMSProvider', timeout: '3', isDefault: true,
      config: JSON.stringify({ URL: `${env.gateway.url}/send`, HTTP_Method: 'POST', SMS_PHONENUMBER_KEY: 'phone', SMS_TEXT_KEY: 'sms', RETURN_SUCCESS: 'OK' }),
    });
  }
  await delivery.load();
  const mailStart = env.smtp.mails.length;
  const smsStart = env.gateway.requests.length;
  const mails = () => env.smtp.mails.slice(mailStart);
  const sms = () => env.gateway.requests.slice(smsStart);
  return {
    t, services, clock, delivery, logs,
    check: (form) => t.post('/validate/check', form),
    policy: async (name, scope, action, extra = {}) => {
      await services.policies.set({ name, scope, action, realm: extra.realm ?? REALM, user: extra.user ?? '*', client: extra.client ?? '*' });
    },
    config,
    mails, sms,
    mailCode: async (count) => {
      await waitFor(() => mails().length >= (count ?? 1), { what: `${count ?? 1} mail(s)` });
      return codeIn(mailBody(mails().at(-1)!));
    },
    smsCode: async (count) => {
      await waitFor(() => sms().length >= (count ?? 1), { what: `${count ?? 1} SMS` });
      return codeIn(String(sms().at(-1)!.body.sms ?? ''));
    },
    tokensOf: async (login) => {
      const user = await services.users.findUser(login, REALM);
      if (!user) return [];
      return services.db.kysely.selectFrom('tokens').select(['serial', 'type', 'fail_count', 'token_info', 'pin_hash', 'description'])
        .where('resolver', '=', user.resolver).where('user_id', '=', user.userId).orderBy('id').execute();
    },
    close: async () => {
      await t.close();
    },
  };
}

/** Like test/helpers/app.ts, with a given logger so tests can read the log. */
function startApp(clock: FakeClock, logger: Logger, dialect: DialectName): Promise<TestApp> {
  return startTestApp({ clock, logger, dialect, env: { OTPD_LOG_LEVEL: 'debug' } });
}

/**
 * Waits until nothing started so far can still send or record anything: the dispatches in
 * flight on this node (a code's send starts before the answer that announces it; the SMTP sink
 * and the HTTP gateway record a message before they answer it), then the audit rows written
 * for their outcomes. A test may then assert that nothing more was sent. No sleep: on a slow
 * machine a sleep can end too early, on a fast one it only costs time.
 */
export async function settle(app: OobApp): Promise<void> {
  await app.delivery.idle();
  await app.services.audit.settled();
}
