import ipaddr from 'ipaddr.js';
import { sql } from 'kysely';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Db } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';

/** How one kind of key (admin name, client source) is throttled. */
export interface ThrottleRule {
  /** Consecutive failures that are checked before the first refusal window. */
  threshold: number;
  /** First refusal window; each further failure doubles it. */
  baseDelayMs: number;
  /** Longest refusal window. */
  maxDelayMs: number;
}

/**
 * The /admin/login limits (docs/api.md, "Admin login throttling"). The per-name cap keeps a
 * name from being locked out for long by a stranger; the per-client limit is higher (one
 * office behind NAT shares it) and stops one source spraying many names.
 */
export const ADMIN_LOGIN_LIMITS = {
  /** @default threshold 5, 1 s doubling to 15 min */
  name: { threshold: 5, baseDelayMs: 1000, maxDelayMs: 15 * 60_000 } satisfies ThrottleRule,
  /** @default threshold 20, 1 s doubling to 1 h */
  client: { threshold: 20, baseDelayMs: 1000, maxDelayMs: 60 * 60_000 } satisfies ThrottleRule,
  /** A key without a failure for this long starts over. @default 24 h */
  forgetAfterMs: 24 * 3_600_000,
} as const;

export type Reservation = { ok: true; nameKey: string; clientKey: string } | { ok: false; retryAfterMs: number };

/**
 * Database-backed login throttle, shared by all nodes. An attempt is reserved before the
 * password is checked, with one conditional UPDATE per key (client source, then name) in one
 * transaction: it counts the failure in advance and, at the threshold, opens the next refusal
 * window. While a key's window is open the UPDATE matches no row, so a refusal costs no
 * password check and counts nothing, and a concurrent burst gets at most `threshold` checks.
 */
export class LoginThrottle {
  private lastSweep = 0;

  constructor(private readonly db: Db, private readonly keyring: KeyRing, private readonly clock: Clock, private readonly limits = ADMIN_LOGIN_LIMITS) {}

  /** Name key: keyed hash of the lower-cased name (no typed passwords in the table; case-insensitive collations share one key). */
  nameKey(name: string): string {
    return `name:${this.keyring.hash('admin-login-throttle', name.toLowerCase()).slice(0, 40)}`;
  }

  async reserve(name: string, client: string): Promise<Reservation> {
    const nameKey = this.nameKey(name);
    const clientKey = `client:${clientSource(client)}`;
    await this.sweep();
    for (let round = 0; round < 3; round++) {
      const now = this.clock.now();
      await this.ensureRows([clientKey, nameKey], now);
      const outcome = await this.db.kysely.transaction().execute(async (trx) => {
        const blocked: number[] = [];
        for (const [key, rule] of [[clientKey, this.limits.client], [nameKey, this.limits.name]] as const) {
          const res = await trx.updateTable('admin_login_throttle').set(this.failureCounted(rule, now)).where('key', '=', key).where('blocked_until', '<=', now).executeTakeFirst();
          if (Number(res.numUpdatedRows) === 1) continue;
          const row = await trx.selectFrom('admin_login_throttle').select('blocked_until').where('key', '=', key).executeTakeFirst();
          if (!row) throw new RowGone();
          blocked.push(Number(row.blocked_until));
        }
        // a refusal must count nothing: undo the other key's reservation with the transaction
        if (blocked.length) throw new Refused(Math.max(...blocked) - now);
        return 'reserved' as const;
      }).catch((e: unknown) => {
        if (e instanceof Refused || e instanceof RowGone) return e;
        throw e;
      });
      if (outcome === 'reserved') return { ok: true, nameKey, clientKey };
      if (outcome instanceof Refused) return { ok: false, retryAfterMs: Math.max(1, outcome.retryAfterMs) };
    }
    // a row swept away three times in a row: fail closed
    return { ok: false, retryAfterMs: this.limits.name.baseDelayMs };
  }

  /** The password was right: the name starts over; the client gets its reserved attempt back. */
  async succeeded(reservation: { nameKey: string; clientKey: string }): Promise<void> {
    await this.db.kysely.deleteFrom('admin_login_throttle').where('key', '=', reservation.nameKey).execute();
    // a window this very attempt opened is closed again (SET order as in failureCounted)
    const belowThreshold = sql`failures - 1 < ${sql.lit(this.limits.client.threshold)}`;
    await this.db.kysely
      .updateTable('admin_login_throttle')
      .set({
        blocked_until: sql<number>`CASE WHEN ${belowThreshold} THEN 0 ELSE blocked_until END`,
        delay_ms: sql<number>`CASE WHEN ${belowThreshold} THEN 0 ELSE delay_ms END`,
        failures: sql<number>`failures - 1`,
      })
      .where('key', '=', reservation.clientKey)
      .where('failures', '>', 0)
      .execute();
  }

  private async ensureRows(keys: string[], now: number): Promise<void> {
    for (const key of keys) {
      const q = this.db.kysely.insertInto('admin_login_throttle').values({ key, failures: 0, delay_ms: 0, blocked_until: 0, last_failure_at: now });
      await (this.db.dialect === 'mysql' ? q.ignore() : q.onConflict((oc) => oc.column('key').doNothing())).execute();
    }
  }

  /**
   * SET clause of a reserved attempt. Every expression reads only columns assigned after it
   * (MySQL evaluates SET left to right with new values; the others use old values), so all
   * dialects compute the same. Numbers are our own integers, inlined to avoid parameter typing.
   */
  private failureCounted(rule: ThrottleRule, now: number) {
    const lit = (n: number) => sql.lit(Math.trunc(n));
    const stale = sql`last_failure_at < ${lit(now - this.limits.forgetAfterMs)}`;
    const failures = sql`(CASE WHEN ${stale} THEN 0 ELSE failures END)`;
    const delay = sql`(CASE WHEN ${stale} THEN 0 ELSE delay_ms END)`;
    const reachesThreshold = sql`${failures} + 1 >= ${lit(rule.threshold)}`;
    const nextDelay = sql`(CASE WHEN ${delay} = 0 THEN ${lit(rule.baseDelayMs)} WHEN ${delay} * 2 >= ${lit(rule.maxDelayMs)} THEN ${lit(rule.maxDelayMs)} ELSE ${delay} * 2 END)`;
    return {
      blocked_until: sql<number>`CASE WHEN ${reachesThreshold} THEN ${lit(now)} + ${nextDelay} ELSE 0 END`,
      delay_ms: sql<number>`CASE WHEN ${reachesThreshold} THEN ${nextDelay} ELSE 0 END`,
      failures: sql<number>`${failures} + 1`,
      last_failure_at: now,
    };
  }

  /** Drops forgotten rows, at most once a minute per process (keeps the table small). */
  private async sweep(): Promise<void> {
    const now = this.clock.now();
    if (now - this.lastSweep < 60_000 && now >= this.lastSweep) return;
    this.lastSweep = now;
    const before = now - this.limits.forgetAfterMs;
    await this.db.kysely.deleteFrom('admin_login_throttle').where('last_failure_at', '<', before).where('blocked_until', '<', before).execute();
  }
}

class Refused {
  constructor(readonly retryAfterMs: number) {}
}
class RowGone {}

/**
 * The throttled source of a client address: IPv4 as is (IPv4-mapped IPv6 as IPv4), IPv6 by
 * its /64, since one site is usually given a whole /64 and could rotate within it.
 */
export function clientSource(address: string): string {
  if (!ipaddr.isValid(address)) return address.slice(0, 64);
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  const parts = (ip as ipaddr.IPv6).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0]).toString()}/64`;
}
