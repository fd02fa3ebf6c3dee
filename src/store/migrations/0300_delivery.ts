import type { Kysely } from 'kysely';
import { key, millis, text, withId } from './util.ts';

/**
 * Delivery: configured providers, the outbox (one row per message, also the
 * delivery log), attempts per provider, shared send-limit counters and
 * provider health. See src/delivery/.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('delivery_providers'))
    .addColumn('type', 'varchar(16)', (c) => c.notNull())
    .addColumn('name', key, (c) => c.notNull())
    .addColumn('class_name', key, (c) => c.notNull())
    .addColumn('config_enc', text, (c) => c.notNull())
    .addColumn('timeout', 'varchar(32)', (c) => c.notNull())
    .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('managed_hash', 'varchar(128)', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('updated_at', millis, (c) => c.notNull())
    .addUniqueConstraint('delivery_providers_type_name', ['type', 'name'])
    .execute();

  await withId(db, db.schema.createTable('delivery_outbox'))
    .addColumn('idempotency_key', key, (c) => c.notNull().unique())
    .addColumn('channel', 'varchar(16)', (c) => c.notNull())
    .addColumn('destination_masked', key, (c) => c.notNull())
    .addColumn('destination_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('payload_enc', text, (c) => c.notNull())
    .addColumn('providers', 'varchar(1024)', (c) => c.notNull())
    .addColumn('refused', 'varchar(1024)', (c) => c.notNull().defaultTo('[]'))
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', millis, (c) => c.notNull())
    .addColumn('lease_owner', 'varchar(64)', (c) => c.notNull().defaultTo(''))
    .addColumn('lease_until', millis, (c) => c.notNull().defaultTo(0))
    .addColumn('provider', key, (c) => c.notNull().defaultTo(''))
    .addColumn('provider_message_id', key, (c) => c.notNull().defaultTo(''))
    .addColumn('error', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .addColumn('user_name', key, (c) => c.notNull().defaultTo(''))
    .addColumn('realm', key, (c) => c.notNull().defaultTo(''))
    .addColumn('serial', key, (c) => c.notNull().defaultTo(''))
    .addColumn('client', 'varchar(64)', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('updated_at', millis, (c) => c.notNull())
    .addColumn('expires_at', millis, (c) => c.notNull())
    .addColumn('finished_at', millis)
    .execute();
  await db.schema.createIndex('delivery_outbox_due').on('delivery_outbox').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('delivery_outbox_receipt').on('delivery_outbox').columns(['provider', 'provider_message_id']).execute();
  await db.schema.createIndex('delivery_outbox_created').on('delivery_outbox').column('created_at').execute();

  await withId(db, db.schema.createTable('delivery_attempts'))
    .addColumn('outbox_id', 'integer', (c) => c.notNull().references('delivery_outbox.id').onDelete('cascade'))
    .addColumn('attempt_no', 'integer', (c) => c.notNull())
    .addColumn('attempt_key', key, (c) => c.notNull().unique())
    .addColumn('provider', key, (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('provider_message_id', key, (c) => c.notNull().defaultTo(''))
    .addColumn('error', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .addColumn('started_at', millis, (c) => c.notNull())
    .addColumn('finished_at', millis)
    .execute();
  await db.schema.createIndex('delivery_attempts_outbox').on('delivery_attempts').column('outbox_id').execute();

  await db.schema
    .createTable('delivery_counters')
    .addColumn('scope', 'varchar(32)', (c) => c.notNull())
    .addColumn('bucket', key, (c) => c.notNull())
    .addColumn('window_start', millis, (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', millis, (c) => c.notNull())
    .addPrimaryKeyConstraint('delivery_counters_pk', ['scope', 'bucket', 'window_start'])
    .execute();
  await db.schema.createIndex('delivery_counters_expiry').on('delivery_counters').column('expires_at').execute();

  await db.schema
    .createTable('delivery_health')
    .addColumn('provider_key', key, (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('down_until', millis, (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .addColumn('updated_at', millis, (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['delivery_health', 'delivery_counters', 'delivery_attempts', 'delivery_outbox', 'delivery_providers']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
