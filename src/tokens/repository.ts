import { sql, type Transaction } from 'kysely';
import type { Db } from '../store/db.ts';
import type { Database, TokenTable } from '../store/schema.ts';
import { insertIgnore, insertReturningId } from '../store/insert.ts';
import { PreparedQuery } from '../store/prepared.ts';
import { affected, drive, type Steps } from '../store/transaction.ts';
import type { HashName } from '../otp/hotp.ts';
import type { Token } from './types.ts';
import { parseJsonObject } from '../util/json.ts';

type Row = Omit<TokenTable, 'id'> & { id: number };

function fromRow(r: Row, realms: string[]): Token {
  return {
    id: Number(r.id),
    serial: r.serial,
    type: r.type,
    description: r.description,
    keyEnc: r.key_enc,
    otplen: Number(r.otplen),
    hashlib: r.hashlib as HashName,
    counter: Number(r.counter),
    countWindow: Number(r.count_window),
    syncWindow: Number(r.sync_window),
    maxFail: Number(r.max_fail),
    failCount: Number(r.fail_count),
    active: Number(r.active) === 1,
    pinHash: r.pin_hash,
    pinSalt: r.pin_salt,
    userId: r.user_id,
    resolver: r.resolver,
    resolverClass: r.resolver_class,
    info: parseJsonObject<string>(r.token_info),
    realms,
    createdAt: Number(r.created_at),
    lastAuthSuccess: r.last_auth_success === null ? null : Number(r.last_auth_success),
    lastAuthMatch: r.last_auth_match === null ? null : Number(r.last_auth_match),
    countAuth: Number(r.count_auth),
    countAuthSuccess: Number(r.count_auth_success),
  };
}

/** A token to insert: a Token without its id and without what starts fresh (counters, fail count, active, statistics). */
export type NewToken = Omit<Token, 'id' | 'counter' | 'failCount' | 'active' | 'lastAuthSuccess' | 'lastAuthMatch' | 'countAuth' | 'countAuthSuccess'> & {
  /** @default true; false for a self-enrolled app token waiting for its first code. */
  active?: boolean;
};

/** A token brought over from another system (seed files, LinOTP): its counters and state come with it. */
export type ImportedToken = NewToken & { counter: number; failCount: number; active: boolean };

/** What insertImported did with one token. */
export type ImportWrite = 'created' | 'kept' | 'counterAdvanced';

export interface TokenFilter {
  serial?: string;
  serials?: string[];
  owner?: { resolver: string; userId: string };
  type?: string;
  realms?: string[];
  /** Substring match on serial, description, type, user id. */
  text?: string;
  unassigned?: boolean;
}

type Executor = Db['kysely'] | Transaction<Database>;

// The statements of every /validate/check, compiled once (store/prepared.ts)
const byOwner = new PreparedQuery<{ resolver: string; userId: string }>((k, p) =>
  k.selectFrom('tokens').selectAll('tokens').where('resolver', '=', p.resolver).where('user_id', '=', p.userId).orderBy('id', 'asc'));
const realmsOfOne = new PreparedQuery<{ id: number }>((k, p) => k.selectFrom('token_realms').select(['token_id', 'realm']).where('token_id', 'in', [p.id]));
// a trigger's compare-and-set on token_info and an attempt given back (one token), compiled once
const infoQuery = new PreparedQuery<{ id: number }>((k, p) => k.selectFrom('tokens').select(['token_info']).where('id', '=', p.id));
const replaceInfoQuery = new PreparedQuery<{ id: number; before: string; info: string }>((k, p) =>
  k.updateTable('tokens').set({ token_info: p.info }).where('id', '=', p.id).where('token_info', '=', p.before));
const releaseOne = new PreparedQuery<{ id: number }>((k, p) =>
  k.updateTable('tokens').set({ fail_count: sql`fail_count - 1` }).where('id', 'in', [p.id]).where('fail_count', '>', 0));
const consumeQuery = (limited: boolean) => new PreparedQuery<{ id: number; matched: number; next: number; now: number; max: number }>((k, p) => {
  let q = k.updateTable('tokens')
    .set({
      counter: p.next,
      fail_count: 0,
      last_auth_success: p.now,
      last_auth_match: p.now,
      // the attempt was counted in count_auth when it was reserved (reserveAttempt)
      count_auth_success: sql`count_auth_success + 1`,
    })
    .where('id', '=', p.id)
    .where('counter', '<=', p.matched)
    .where('active', '=', 1);
  // countAuthSuccessMax: parallel successes of a static value (pw) cannot pass the limit
  if (limited) q = q.where('count_auth_success', '<', p.max);
  return q;
});
const consumeAny = consumeQuery(false);
const consumeBelowMax = consumeQuery(true);
const reserveQuery = (limited: boolean) => new PreparedQuery<{ id: number; max: number }>((k, p) => {
  let q = k.updateTable('tokens')
    .set({ fail_count: sql`fail_count + 1`, count_auth: sql`count_auth + 1` })
    .where('id', '=', p.id)
    .where(sql<boolean>`fail_count < max_fail`);
  if (limited) q = q.where('count_auth', '<', p.max);
  return q;
});
const reserveAny = reserveQuery(false);
const reserveBelowMax = reserveQuery(true);

/**
 * Token rows. Single-use state changes are conditional writes whose affected-row
 * count is checked: `counter` only moves forward, `fail_count` is changed in SQL.
 */
export class TokenRepository {
  constructor(private readonly db: Db) {}

  async insert(t: NewToken, trx: Executor = this.db.kysely): Promise<number> {
    const id = await insertReturningId(this.db.dialect, trx.insertInto('tokens').values({
      serial: t.serial, type: t.type, description: t.description, key_enc: t.keyEnc, otplen: t.otplen,
      hashlib: t.hashlib, counter: 0, count_window: t.countWindow, sync_window: t.syncWindow, max_fail: t.maxFail,
      fail_count: 0, active: t.active === false ? 0 : 1, pin_hash: t.pinHash, pin_salt: t.pinSalt, user_id: t.userId, resolver: t.resolver,
      resolver_class: t.resolverClass, token_info: JSON.stringify(t.info), created_at: t.createdAt,
      last_auth_success: null, last_auth_match: null, count_auth: 0, count_auth_success: 0,
    }));
    // A new token has no realm rows: no DELETE first (on MariaDB its gap lock deadlocks parallel inserts).
    await this.insertRealms(id, t.realms, trx);
    return id;
  }

  /**
   * Writes imported tokens in one transaction (all or none). A serial that exists already is
   * kept as it is, except that its counter moves forward to the imported one when that is
   * higher (a conditional write): a second import changes nothing, and one taken while the
   * old server went on counting never lets a code through that the old server already used.
   * A serial of another type is refused before anything is written (`clash`).
   */
  async insertImported(tokens: ImportedToken[], clash: (serial: string, type: string) => Error): Promise<ImportWrite[]> {
    return this.db.kysely.transaction().execute(async (trx) => {
      const out: ImportWrite[] = [];
      for (const t of tokens) {
        const existing = await trx.selectFrom('tokens').select(['id', 'type', 'counter']).where('serial', '=', t.serial).executeTakeFirst();
        if (existing) {
          if (existing.type !== t.type) throw clash(t.serial, existing.type);
          const res = await trx.updateTable('tokens').set({ counter: t.counter }).where('id', '=', existing.id).where('counter', '<', t.counter).executeTakeFirst();
          out.push(Number(res.numUpdatedRows) === 1 ? 'counterAdvanced' : 'kept');
          continue;
        }
        const id = await insertReturningId(this.db.dialect, trx.insertInto('tokens').values({
          serial: t.serial, type: t.type, description: t.description, key_enc: t.keyEnc, otplen: t.otplen,
          hashlib: t.hashlib, counter: t.counter, count_window: t.countWindow, sync_window: t.syncWindow, max_fail: t.maxFail,
          fail_count: t.failCount, active: t.active ? 1 : 0, pin_hash: t.pinHash, pin_salt: t.pinSalt, user_id: t.userId, resolver: t.resolver,
          resolver_class: t.resolverClass, token_info: JSON.stringify(t.info), created_at: t.createdAt,
          last_auth_success: null, last_auth_match: null, count_auth: 0, count_auth_success: 0,
        }));
        await this.insertRealms(id, t.realms, trx);
        out.push('created');
      }
      return out;
    });
  }

  /**
   * Replaces a token's realms in one transaction that locks the token's row first (PostgreSQL,
   * MariaDB; SQLite runs explicit transactions one at a time), so parallel calls for one token
   * apply one after the other and the last one's realms stand: a DELETE and INSERT of two calls
   * interleaved before (UNIQUE token_realms, an internal error, found by the HTTP fuzz). Only the
   * difference is written, each row by its key: no DELETE over a range, whose gap lock
   * deadlocks parallel writers on MariaDB.
   */
  async setRealms(tokenId: number, realms: string[], trx?: Executor): Promise<void> {
    const wanted = [...new Set(realms.map((r) => r.toLowerCase()).filter(Boolean))];
    const apply = async (t: Executor) => {
      if (this.db.dialect !== 'sqlite') await t.selectFrom('tokens').select('id').where('id', '=', tokenId).forUpdate().execute();
      const current = (await t.selectFrom('token_realms').select('realm').where('token_id', '=', tokenId).execute()).map((r) => r.realm.toLowerCase());
      const gone = current.filter((r) => !wanted.includes(r));
      if (gone.length) await t.deleteFrom('token_realms').where('token_id', '=', tokenId).where('realm', 'in', gone).execute();
      const added = wanted.filter((r) => !current.includes(r));
      if (added.length) await insertIgnore(this.db.dialect, t, 'token_realms', added.map((realm) => ({ token_id: tokenId, realm }))).execute();
    };
    await (trx ? apply(trx) : this.db.kysely.transaction().execute(apply));
  }

  private async insertRealms(tokenId: number, realms: string[], trx: Executor): Promise<void> {
    const unique = [...new Set(realms.map((r) => r.toLowerCase()).filter(Boolean))];
    if (unique.length) await trx.insertInto('token_realms').values(unique.map((realm) => ({ token_id: tokenId, realm }))).execute();
  }

  async find(filter: TokenFilter, page?: { offset: number; limit: number; sortBy?: keyof TokenTable; desc?: boolean }): Promise<Token[]> {
    if (!page && filter.owner && Object.keys(filter).length === 1) {
      // a user's tokens (every validation): the same query as below, compiled once
      const res = await byOwner.run(this.db.kysely, this.db.dialect, filter.owner);
      return this.withRealms(res.rows as Row[]);
    }
    let q = this.filtered(filter).selectAll('tokens');
    q = q.orderBy(page?.sortBy ?? 'id', page?.desc ? 'desc' : 'asc');
    if (page) q = q.limit(page.limit).offset(page.offset);
    const rows = (await q.execute()) as Row[];
    return this.withRealms(rows);
  }

  async count(filter: TokenFilter): Promise<number> {
    const r = await this.filtered(filter).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async bySerial(serial: string): Promise<Token | undefined> {
    return (await this.find({ serial }))[0];
  }

  async byId(id: number): Promise<Token | undefined> {
    const rows = (await this.db.kysely.selectFrom('tokens').selectAll().where('id', '=', id).execute()) as Row[];
    return (await this.withRealms(rows))[0];
  }

  private filtered(f: TokenFilter) {
    let q = this.db.kysely.selectFrom('tokens');
    if (f.serial !== undefined) q = q.where('serial', '=', f.serial);
    if (f.serials) q = q.where('serial', 'in', f.serials.length ? f.serials : ['\u0000']);
    if (f.owner) q = q.where('resolver', '=', f.owner.resolver).where('user_id', '=', f.owner.userId);
    if (f.unassigned) q = q.where('user_id', '=', '');
    if (f.type) q = q.where('type', '=', f.type.toLowerCase());
    if (f.realms) {
      const realms = f.realms.length ? f.realms : ['\u0000'];
      q = q.where('id', 'in', this.db.kysely.selectFrom('token_realms').select('token_id').where('realm', 'in', realms));
    }
    if (f.text) {
      const like = `%${f.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      q = q.where((eb) => eb.or([eb('serial', 'like', like), eb('description', 'like', like), eb('type', 'like', like), eb('user_id', 'like', like)]));
    }
    return q;
  }

  private async withRealms(rows: Row[]): Promise<Token[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => Number(r.id));
    const realms = ids.length === 1
      ? (await realmsOfOne.run(this.db.kysely, this.db.dialect, { id: ids[0] })).rows as { token_id: number; realm: string }[]
      : await this.db.kysely.selectFrom('token_realms').select(['token_id', 'realm']).where('token_id', 'in', ids).execute();
    return rows.map((r) => fromRow(r, realms.filter((x) => Number(x.token_id) === Number(r.id)).map((x) => x.realm).sort()));
  }

  /** The stored `token_info` text as it is (for a compare-and-set with replaceInfo). */
  async rawInfo(id: number, trx: Executor = this.db.kysely): Promise<string | undefined> {
    return drive(trx, this.rawInfoSteps(trx, id));
  }

  /** {@link rawInfo} as a step (store/transaction.ts atomicSteps). */
  *rawInfoSteps(k: Executor, id: number): Steps<string | undefined> {
    const res = yield infoQuery.bind(k, this.db.dialect, { id });
    return (res.rows[0] as { token_info: string } | undefined)?.token_info;
  }

  /** Compare-and-set of `token_info`: true only if it still was `before`. */
  async replaceInfo(id: number, before: string, info: Record<string, string>, trx: Executor = this.db.kysely): Promise<boolean> {
    return drive(trx, this.replaceInfoSteps(trx, id, before, info));
  }

  /** {@link replaceInfo} as a step. */
  *replaceInfoSteps(k: Executor, id: number, before: string, info: Record<string, string>): Steps<boolean> {
    const res = yield replaceInfoQuery.bind(k, this.db.dialect, { id, before, info: JSON.stringify(info) });
    return affected(res) === 1;
  }

  async update(id: number, set: Partial<Omit<TokenTable, 'id'>>, trx: Executor = this.db.kysely): Promise<number> {
    const res = await trx.updateTable('tokens').set(set).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /**
   * Updates a token whose phone number or e-mail address changed, and closes its open
   * challenges in the same transaction: a code that went to the old destination must not
   * answer anything, and must not hold back a new code for the new one (blocking window).
   * The token row is written first, so a trigger racing with this change either committed
   * its challenge before (closed here) or fails its compare-and-set on the token row.
   */
  async updateDestination(id: number, set: Partial<Omit<TokenTable, 'id'>>): Promise<{ updated: number; closedChallenges: number }> {
    return this.db.kysely.transaction().execute(async (trx) => {
      const updated = await this.update(id, set, trx);
      const res = await trx.updateTable('challenges').set({ status: 'closed' }).where('token_id', '=', id).where('status', '=', 'open').executeTakeFirst();
      return { updated, closedChallenges: Number(res.numUpdatedRows) };
    });
  }

  /** Replaces a PIN hash only while it is still `from` (a parallel writer wins otherwise). True when replaced. */
  async replacePin(id: number, from: { hash: string; salt: string }, to: { hash: string; salt: string }): Promise<boolean> {
    const res = await this.db.kysely.updateTable('tokens').set({ pin_hash: to.hash, pin_salt: to.salt })
      .where('id', '=', id).where('pin_hash', '=', from.hash).where('pin_salt', '=', from.salt).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async delete(ids: number[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.db.kysely.transaction().execute(async (trx) => {
      await trx.deleteFrom('challenges').where('token_id', 'in', ids).execute();
      await trx.deleteFrom('token_realms').where('token_id', 'in', ids).execute();
      const res = await trx.deleteFrom('tokens').where('id', 'in', ids).executeTakeFirst();
      return Number(res.numDeletedRows);
    });
  }

  /**
   * The single-use write: moves the counter to `nextCounter` only if nobody moved it
   * past `matched` meanwhile (and, with `successMax`, only below that many successes); resets
   * the fail counter. True when this request won.
   */
  async consume(id: number, matched: number, nextCounter: number, now: number, successMax?: number): Promise<boolean> {
    const values = { id, matched, next: nextCounter, now, max: successMax ?? 0 };
    const res = await (successMax !== undefined ? consumeBelowMax : consumeAny).run(this.db.kysely, this.db.dialect, values);
    return Number(res.numAffectedRows ?? 0) === 1;
  }

  /**
   * The first code of a self-enrolled token: activates it and stores its counter, once (the
   * compare-and-set on `active = 0` and the counter makes a parallel copy lose). True when this request won.
   */
  async activatePending(id: number, matched: number, nextCounter: number, tokenInfo: string, now: number): Promise<boolean> {
    const res = await this.db.kysely
      .updateTable('tokens')
      .set({ active: 1, counter: nextCounter, fail_count: 0, token_info: tokenInfo, last_auth_success: now, last_auth_match: now, count_auth_success: sql`count_auth_success + 1` })
      .where('id', '=', id)
      .where('active', '=', 0)
      .where('counter', '<=', matched)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Reserves one attempt: fail_count + 1 only while below max_fail (and count_auth below
   * `authMax`, the token's countAuthMax). False = locked or used up.
   */
  async reserveAttempt(id: number, authMax?: number): Promise<boolean> {
    const res = await (authMax !== undefined ? reserveBelowMax : reserveAny).run(this.db.kysely, this.db.dialect, { id, max: authMax ?? 0 });
    return Number(res.numAffectedRows ?? 0) === 1;
  }

  /** Gives a reserved attempt back (challenge triggered, or another token matched the PIN). */
  async releaseAttempt(ids: number[]): Promise<void> {
    if (ids.length === 1) await releaseOne.run(this.db.kysely, this.db.dialect, { id: ids[0] });
    else if (ids.length) await this.db.kysely.updateTable('tokens').set({ fail_count: sql`fail_count - 1` }).where('id', 'in', ids).where('fail_count', '>', 0).execute();
  }

  async resetFail(ids: number[]): Promise<void> {
    if (ids.length) await this.db.kysely.updateTable('tokens').set({ fail_count: 0 }).where('id', 'in', ids).execute();
  }

  async serialExists(serial: string): Promise<boolean> {
    return !!(await this.db.kysely.selectFrom('tokens').select('id').where('serial', '=', serial).executeTakeFirst());
  }
}
