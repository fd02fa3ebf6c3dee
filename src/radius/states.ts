import { randomBytes } from 'node:crypto';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Db } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';

/** Bytes of a State value: 128 random bits (security property 30). */
export const STATE_BYTES = 16;
const HASH_DOMAIN = 'radius-state';
const CLEANUP_INTERVAL_MS = 60_000;

export type StateLookup =
  | { ok: true; transactionId: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'mismatch' | 'used' };

/**
 * State attributes of open Access-Challenges, in the database so that the answer may
 * reach any node. Only a keyed hash of the State is stored. A State is bound to the
 * user and the RADIUS client it was issued to, expires with its challenge and is
 * consumed by a conditional delete: of concurrent answers exactly one gets it.
 */
export class RadiusStateStore {
  private lastCleanup = 0;

  constructor(private readonly db: Db, private readonly keyring: KeyRing, private readonly clock: Clock) {}

  async issue(args: { transactionId: string; user: string; clientName: string; expiresAt: number }): Promise<Buffer> {
    const state = randomBytes(STATE_BYTES);
    const now = this.clock.now();
    await this.db.kysely
      .insertInto('radius_states')
      .values({
        state_hash: this.keyring.hash(HASH_DOMAIN, state),
        transaction_id: args.transactionId,
        user_name: args.user,
        client_name: args.clientName,
        created_at: now,
        expires_at: args.expiresAt,
      })
      .execute();
    if (now - this.lastCleanup > CLEANUP_INTERVAL_MS) {
      this.lastCleanup = now;
      await this.db.kysely.deleteFrom('radius_states').where('expires_at', '<', now).execute();
    }
    return state;
  }

  /** Consumes a State presented by `user` through `clientName`; a mismatch leaves it for its owner. */
  async consume(state: Buffer, user: string, clientName: string): Promise<StateLookup> {
    if (state.length !== STATE_BYTES) return { ok: false, reason: 'unknown' };
    const stateHash = this.keyring.hash(HASH_DOMAIN, state);
    const row = await this.db.kysely.selectFrom('radius_states').selectAll().where('state_hash', '=', stateHash).executeTakeFirst();
    if (!row) return { ok: false, reason: 'unknown' };
    if (row.user_name !== user || row.client_name !== clientName) return { ok: false, reason: 'mismatch' };
    const deleted = await this.db.kysely.deleteFrom('radius_states').where('state_hash', '=', stateHash).executeTakeFirst();
    if (Number(deleted.numDeletedRows) !== 1) return { ok: false, reason: 'used' };
    if (Number(row.expires_at) <= this.clock.now()) return { ok: false, reason: 'expired' };
    return { ok: true, transactionId: row.transaction_id };
  }
}
