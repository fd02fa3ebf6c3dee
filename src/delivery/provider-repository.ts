import { sql, type Kysely } from 'kysely';
import type { Db } from '../store/db.ts';
import { PreparedQuery } from '../store/prepared.ts';
import { bumpRevision } from '../store/revisions.ts';
import type { Database } from '../store/schema.ts';
import { insertIgnore, n, type ProviderRow } from './repository.ts';

/** Provider health as the dispatcher keeps it: consecutive failures and the end of the back-off. */
export interface HealthState {
  failures: number;
  downUntil: number;
  lastError: string;
}

/**
 * The configured providers (config sealed with the key ring) and their health.
 * Every change moves the `delivery_providers` revision, so all nodes reload.
 */
export class ProviderRepository {
  constructor(private readonly db: Db) {}

  private get k(): Kysely<Database> {
    return this.db.kysely;
  }

  listProviders(type?: string): Promise<ProviderRow[]> {
    let q = this.k.selectFrom('delivery_providers').selectAll().orderBy('type').orderBy('name');
    if (type) q = q.where('type', '=', type);
    return q.execute();
  }

  async getProvider(type: string, name: string): Promise<ProviderRow | undefined> {
    return this.k.selectFrom('delivery_providers').selectAll().where('type', '=', type).where('name', '=', name).executeTakeFirst();
  }

  /** Inserts or replaces a provider; `makeDefault` clears the flag of the others of its type. */
  async saveProvider(row: Omit<ProviderRow, 'id' | 'created_at'>, makeDefault: boolean, now: number): Promise<void> {
    await this.k.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('delivery_providers').select(['id']).where('type', '=', row.type).where('name', '=', row.name).executeTakeFirst();
      if (makeDefault) await trx.updateTable('delivery_providers').set({ is_default: 0 }).where('type', '=', row.type).execute();
      const values = { ...row, is_default: makeDefault ? 1 : row.is_default, updated_at: now };
      if (existing) await trx.updateTable('delivery_providers').set(values).where('id', '=', existing.id).execute();
      else await trx.insertInto('delivery_providers').values({ ...values, created_at: now }).execute();
      // LinOTP: with no default of this type, the first provider becomes it.
      const hasDefault = await trx.selectFrom('delivery_providers').select('id').where('type', '=', row.type).where('is_default', '=', 1).executeTakeFirst();
      if (!hasDefault) {
        await trx.updateTable('delivery_providers').set({ is_default: 1 }).where('type', '=', row.type).where('name', '=', row.name).execute();
      }
    });
  }

  async setDefaultProvider(type: string, name: string, now: number): Promise<boolean> {
    return this.k.transaction().execute(async (trx) => {
      const target = await trx.selectFrom('delivery_providers').select('id').where('type', '=', type).where('name', '=', name).executeTakeFirst();
      if (!target) return false;
      await trx.updateTable('delivery_providers').set({ is_default: 0 }).where('type', '=', type).execute();
      await trx.updateTable('delivery_providers').set({ is_default: 1, updated_at: now }).where('id', '=', target.id).execute();
      return true;
    });
  }

  async deleteProvider(type: string, name: string): Promise<boolean> {
    const res = await this.k.deleteFrom('delivery_providers').where('type', '=', type).where('name', '=', name).executeTakeFirst();
    await this.k.deleteFrom('delivery_health').where('provider_key', '=', `${type}:${name}`).execute();
    return n(res.numDeletedRows) > 0;
  }

  /** Tells every node (this one included, through its watcher) that the providers changed. */
  async changed(): Promise<void> {
    await bumpRevision(this.db, 'delivery_providers');
  }

  // ---- provider health ------------------------------------------------------

  async health(keys: string[]): Promise<Map<string, HealthState>> {
    if (keys.length === 0) return new Map();
    const rows = keys.length === 1
      ? (await healthOfOne.run(this.k, this.db.dialect, { key: keys[0] })).rows as { provider_key: string; failures: unknown; down_until: unknown; last_error: string }[]
      : await this.k.selectFrom('delivery_health').selectAll().where('provider_key', 'in', keys).execute();
    return new Map(rows.map((r) => [r.provider_key, { failures: n(r.failures), downUntil: n(r.down_until), lastError: r.last_error }]));
  }

  async allHealth(): Promise<(HealthState & { key: string })[]> {
    const rows = await this.k.selectFrom('delivery_health').selectAll().execute();
    return rows.map((r) => ({ key: r.provider_key, failures: n(r.failures), downUntil: n(r.down_until), lastError: r.last_error }));
  }

  /** One more failure: back-off doubles from `baseMs` up to `maxMs`. */
  async markUnhealthy(key: string, reason: string, now: number, baseMs: number, maxMs: number): Promise<number> {
    await insertIgnore(this.db.dialect, this.k, 'delivery_health', { provider_key: key, failures: 0, down_until: 0, last_error: '', updated_at: now }).execute();
    const row = await this.k.selectFrom('delivery_health').select('failures').where('provider_key', '=', key).executeTakeFirst();
    const failures = n(row?.failures) + 1;
    const downUntil = now + Math.min(maxMs, baseMs * 2 ** Math.min(20, failures - 1));
    await this.k
      .updateTable('delivery_health')
      .set({ failures: sql`${sql.ref('failures')} + 1`, down_until: downUntil, last_error: reason.slice(0, 512), updated_at: now })
      .where('provider_key', '=', key)
      .execute();
    return downUntil;
  }

  /**
   * Its health probe answered after the back-off: usable again (`down_until` 0), but the failures
   * in a row stay until a send succeeds, so a provider that answers probes and still fails its
   * sends (a gateway that accepts connections and hangs) backs off longer each time.
   */
  async markProbeAnswered(key: string, now: number): Promise<void> {
    await this.k.updateTable('delivery_health').set({ down_until: 0, updated_at: now }).where('provider_key', '=', key).where('failures', '>', 0).execute();
  }
}

/** The health of a message's one provider (every dispatch asks it), compiled once. */
const healthOfOne = new PreparedQuery<{ key: string }>((k, p) => k.selectFrom('delivery_health').selectAll().where('provider_key', 'in', [p.key]));
/** A send through the provider with this key went through: its failures in a row end (a write only when it had some). */
export const healthyQuery = new PreparedQuery<{ key: string; now: number }>((k, p) => k
  .updateTable('delivery_health').set({ failures: 0, down_until: 0, updated_at: p.now }).where('provider_key', '=', p.key).where('failures', '>', 0));
