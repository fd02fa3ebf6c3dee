/**
 * Seeds a bench database (child process of run.ts, exits when done): the users, realms,
 * tokens, config, policies and providers of bench/layout.ts, through otpd's own services.
 *
 *   BENCH_DIR=… BENCH_PLAN='{"hotp":3800,"full":true,…}' [OTPD_DATABASE_URL=…] node --import tsx bench/seed.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSettings } from '../src/config/settings.ts';
import { createServices, type Services } from '../src/services.ts';
import { accountOf } from '../src/validation/account-attempts.ts';
import {
  ACCOUNT_LOCKED, CHAL, EMAIL, HOTP_LOCKED, HOTP_OK, LDAP, LDAP_ADMIN_DN, LDAP_ADMIN_PW, LDAP_BASE, PIN, SMS, TOTP, USERS,
  indices, login, seedOf, serialOf, type Range, type SeedPlan,
} from './layout.ts';

const dir = process.env.BENCH_DIR!;
const plan = JSON.parse(process.env.BENCH_PLAN!) as SeedPlan;

const mobileOf = (i: number) => `+49151234${String(i).padStart(5, '0')}`;

function passwdFile(name: string, r: Range, count: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const l = login(r, i);
    lines.push(`${l}:x:${10_000 + i}:10000:Bench User${i},,${mobileOf(i)},,${l}@example.org:/home/${l}:/bin/sh`);
  }
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function inChunks<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let k = 0; k < items.length; k += size) await Promise.all(items.slice(k, k + size).map(fn));
}

async function enroll(s: Services, r: Range, realm: string, type: string, ids: number[], extra: (i: number) => Record<string, string> = () => ({})): Promise<void> {
  // SQLite group-commits a chunk at once; a server database's pool (10 connections) would queue it
  await inChunks(ids, s.db.dialect === 'sqlite' ? 100 : 8, async (i) => {
    const serial = serialOf(r, i);
    const params: Record<string, string> = { type, serial, user: login(r, i), realm, pin: PIN, ...extra(i) };
    if (type === 'hmac' || type === 'totp') params.otpkey = seedOf(serial).toString('hex');
    await s.tokens.init({ get: (k) => params[k], has: (k) => k in params }, { realms: '*' });
  });
}

const settings = loadSettings({ OTPD_DATA_DIR: dir, OTPD_LOG_LEVEL: 'warn', ...(process.env.OTPD_DATABASE_URL ? { OTPD_DATABASE_URL: process.env.OTPD_DATABASE_URL } : {}) }, dir);
const s = await createServices({ settings });
const started = Date.now();
// Failure limits high enough that the wrong-OTP case measures the fail-counter write, not
// the account's refusal windows (those are case 3); no blocking window, and every send limit
// counted as by default (six buckets a message) but with a cap no run reaches, so every
// trigger of case 4 sends a message.
const config: Record<string, string> = {
  AccountFailDelayAfter: '100', DefaultMaxFailCount: '100', 'totp.timeWindow': '2',
  DeliveryAllowedCountryCodes: '*', SMSBlockingTimeout: '0', EmailBlockingTimeout: '0',
};
for (const k of ['DeliveryLimitPerUser', 'DeliveryLimitPerDestination', 'DeliveryLimitPerPrefix', 'DeliveryLimitPerCountry', 'DeliveryLimitPerClient', 'DeliveryLimitGlobal']) config[k] = '100000000/86400';
for (const [k, v] of Object.entries(config)) await s.config.set(k, v);

await s.users.setResolver('benchusers', 'passwdresolver', { fileName: passwdFile('bench.passwd', { ...HOTP_OK, to: USERS }, USERS) });
await s.users.setRealm('bench', ['useridresolver.PasswdIdResolver.IdResolver.benchusers']);
await s.users.setDefaultRealm('bench');
await enroll(s, HOTP_OK, 'bench', 'hmac', indices(HOTP_OK, plan.hotp));

if (plan.full) {
  await enroll(s, HOTP_LOCKED, 'bench', 'hmac', indices(HOTP_LOCKED));
  await enroll(s, ACCOUNT_LOCKED, 'bench', 'hmac', indices(ACCOUNT_LOCKED));
  await enroll(s, TOTP, 'bench', 'totp', indices(TOTP), () => ({ timeWindow: '2' }));
  await enroll(s, SMS, 'bench', 'sms', indices(SMS), (i) => ({ phone: mobileOf(i) }));
  await enroll(s, EMAIL, 'bench', 'email', indices(EMAIL), (i) => ({ email_address: `${login(EMAIL, i)}@example.org` }));
  await s.db.kysely.updateTable('tokens').set({ fail_count: 100 }).where('serial', 'in', indices(HOTP_LOCKED).map((i) => serialOf(HOTP_LOCKED, i))).execute();
  for (const i of indices(ACCOUNT_LOCKED)) {
    const user = await s.users.findUser(login(ACCOUNT_LOCKED, i), 'bench');
    const key = accountOf(user!);
    await s.db.kysely.insertInto('account_attempts').values({
      realm: key.realm, user_key: key.userKey, login: key.login, fail_count: 100, delay_ms: 0, pending: 0, pending_at: 0, window_start: 0, last_attempt: 0,
    }).execute();
  }

  await s.users.setResolver('chalusers', 'passwdresolver', { fileName: passwdFile('chal.passwd', CHAL, CHAL.to) });
  await s.users.setRealm('chal', ['useridresolver.PasswdIdResolver.IdResolver.chalusers']);
  await enroll(s, CHAL, 'chal', 'hmac', indices(CHAL));
  await s.policies.set({ name: 'bench_chal', scope: 'authentication', action: 'challenge_response=hmac', realm: 'chal', user: '*', client: '*' });

  await s.delivery.setProvider({
    type: 'sms', name: 'gateway', className: 'HttpSMSProvider', timeout: '3', isDefault: true,
    config: JSON.stringify({ URL: plan.smsUrl, HTTP_Method: 'POST', SMS_PHONENUMBER_KEY: 'phone', SMS_TEXT_KEY: 'sms', RETURN_SUCCESS: 'OK' }),
  });
  await s.delivery.setProvider({
    type: 'email', name: 'mail', className: 'SMTPEmailProvider', timeout: '3', isDefault: true,
    config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: plan.smtpPort, EMAIL_FROM: 'otpd@example.org', EMAIL_SUBJECT: 'Your OTP' }),
  });
}

if (plan.ldapUrl) {
  await s.users.setResolver('benchldap', 'ldapresolver', {
    PRESET: 'openldap', LDAPURI: plan.ldapUrl, LDAPBASE: LDAP_BASE, BINDDN: LDAP_ADMIN_DN, BINDPW: LDAP_ADMIN_PW,
    EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '3',
  });
  await s.users.setRealm('ldap', ['useridresolver.LDAPIdResolver.IdResolver.benchldap']);
  await enroll(s, LDAP, 'ldap', 'hmac', indices(LDAP));
}

const tokens = await s.db.kysely.selectFrom('tokens').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
await s.close();
process.stdout.write(`${JSON.stringify({ tokens: Number(tokens.n), seconds: (Date.now() - started) / 1000 })}\n`);
