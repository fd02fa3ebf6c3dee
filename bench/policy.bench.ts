/**
 * Policy evaluation on the hot path of /validate/check, against baselines
 * measured in the same run: a Map lookup (what a plain config read costs)
 * and the same question with no policy set at all.
 *
 *   node --import tsx bench/policy.bench.ts
 */
import pino from 'pino';
import { openDatabase } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { PolicyService, type PolicySubject } from '../src/policy/service.ts';

const DURATION_MS = Number(process.env.BENCH_MS ?? 1000);

function measure(label: string, fn: (i: number) => unknown): number {
  let sink = 0;
  // warm-up
  for (let i = 0; i < 20_000; i++) if (fn(i)) sink++;
  let n = 0;
  const start = process.hrtime.bigint();
  const until = start + BigInt(DURATION_MS) * 1_000_000n;
  let now = start;
  while (now < until) {
    for (let k = 0; k < 1000; k++, n++) if (fn(n)) sink++;
    now = process.hrtime.bigint();
  }
  const perSecond = n / (Number(now - start) / 1e9);
  console.log(`${label.padEnd(58)} ${Math.round(perSecond).toLocaleString('en').padStart(13)} /s${sink < 0 ? '' : ''}`);
  return perSecond;
}

async function service(withPolicies: boolean): Promise<{ svc: PolicyService; close: () => Promise<void> }> {
  const db = await openDatabase('sqlite::memory:');
  await migrateToLatest(db);
  const svc = new PolicyService({ db, logger: pino({ level: 'silent' }) });
  await svc.load();
  if (withPolicies) {
    const realms = ['corp', 'lab', 'partners', 'students', 'staff'];
    for (let i = 0; i < 40; i++) {
      const realm = realms[i % realms.length];
      await svc.set({
        name: `user_rule_${String(i).padStart(2, '0')}`,
        scope: 'authentication',
        action: i % 3 === 0 ? 'otppin=password' : i % 3 === 1 ? 'challenge_response=sms email' : 'passthru',
        realm,
        user: i % 4 === 0 ? `svc.${i}*, !svc.${i}x` : i % 4 === 1 ? `*@${realm}#mobile` : `user${i}, admin${i}.ldap:`,
        client: i % 2 === 0 ? '10.0.0.0/8, !10.66.0.0/16, 2001:db8::/32' : '',
        time: i % 5 === 0 ? '* 6-20 * * 1-5 *; !* * 24-26 12 * *' : '',
      });
    }
    await svc.set({ name: 'default_otppin', scope: 'authentication', action: 'otppin=token_pin, sms_provider=main backup', realm: '*', user: '*' });
    await svc.set({ name: 'enroll_sms', scope: 'enrollment', action: 'autoenrollment=sms email, maxtoken=3', realm: '*', user: '*' });
    await svc.set({ name: 'authz_vpn', scope: 'authorization', action: 'authorize, detail_on_fail', realm: 'corp', user: '*', client: '192.0.2.0/24' });
  }
  return { svc, close: () => (svc as unknown as { db: { close(): Promise<void> } }).db.close() };
}

const subjects: PolicySubject[] = Array.from({ length: 64 }, (_, i) => ({
  login: `user${i}`,
  realm: ['corp', 'lab', 'partners', 'students', 'staff'][i % 5],
  resolver: 'ldap',
  client: i % 2 ? `10.${i}.1.2` : `2001:db8::${i.toString(16)}`,
  userInfo: { mobile: i % 3 ? '+15550100' : undefined, email: `u${i}@example.org` },
}));

/** The questions one /validate/check asks (spec 2.1, 1.3). */
function request(svc: PolicyService, s: PolicySubject): number {
  let n = 0;
  if (svc.value('authorization', 'setrealm', s) !== undefined) n++;
  if (svc.anyPolicy('authorization', 'authorize') && svc.has('authorization', 'authorize', s)) n++;
  if (svc.value('authentication', 'otppin', s) === 'password') n++;
  if (svc.value('authentication', 'challenge_response', s) !== undefined) n++;
  if (svc.has('authentication', 'passthru', s)) n++;
  if (svc.value('enrollment', 'autoenrollment', s, { ignoreTime: true }) !== undefined) n++;
  if (svc.has('authorization', 'detail_on_success', s)) n++;
  if (svc.value('authentication', 'sms_provider', s) !== undefined) n++;
  return n;
}

const map = new Map<string, string>([['authentication\0otppin', 'token_pin']]);
const baselineMap = measure('baseline: Map.get (one config read)', (i) => map.get(i % 2 ? 'authentication\0otppin' : 'x'));

const empty = await service(false);
const baselineEmpty = measure('baseline: value(otppin) with no policies', (i) => empty.svc.value('authentication', 'otppin', subjects[i & 63]));

const full = await service(true);
const one = measure('value(otppin), 43 policies', (i) => full.svc.value('authentication', 'otppin', subjects[i & 63]));
const req = measure('one /validate/check worth of questions (8), 43 policies', (i) => request(full.svc, subjects[i & 63]));

console.log('');
console.log(`value(otppin)        = ${(one / baselineMap).toFixed(3)}x Map.get, ${(one / baselineEmpty).toFixed(3)}x no-policy lookup`);
console.log(`per request (8 asks) = ${(req / baselineMap).toFixed(4)}x Map.get; ${(1e6 / req).toFixed(2)} µs per request`);
await empty.close();
await full.close();
