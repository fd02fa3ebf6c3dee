import type { Kysely } from 'kysely';
import { key, millis } from './util.ts';

/**
 * Admin authentication hardening: the /admin/login throttle (per admin name and per
 * client source, shared by all nodes, survives restarts) and API key expiry/revocation.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('admin_login_throttle')
    .addColumn('key', key, (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('delay_ms', millis, (c) => c.notNull().defaultTo(0))
    .addColumn('blocked_until', millis, (c) => c.notNull().defaultTo(0))
    .addColumn('last_failure_at', millis, (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('admin_login_throttle_age').on('admin_login_throttle').column('last_failure_at').execute();
  await db.schema.alterTable('api_keys').addColumn('expires_at', millis).execute();
  await db.schema.alterTable('api_keys').addColumn('revoked_at', millis).execute();
  await db.schema.createIndex('api_keys_admin').on('api_keys').column('admin').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('api_keys_admin').on('api_keys').execute();
  await db.schema.alterTable('api_keys').dropColumn('revoked_at').execute();
  await db.schema.alterTable('api_keys').dropColumn('expires_at').execute();
  await db.schema.dropTable('admin_login_throttle').ifExists().execute();
}
