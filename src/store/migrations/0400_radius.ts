import type { Kysely } from 'kysely';
import { key, millis, text } from './util.ts';

/** RADIUS clients and the State values of open Access-Challenges. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('radius_clients')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('address', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('secret_enc', text, (c) => c.notNull())
    .addColumn('realm', key, (c) => c.notNull().defaultTo(''))
    .addColumn('require_message_authenticator', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('source', 'varchar(16)', (c) => c.notNull().defaultTo('api'))
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('updated_at', millis, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('radius_states')
    .addColumn('state_hash', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('transaction_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_name', 'varchar(512)', (c) => c.notNull())
    .addColumn('client_name', key, (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('expires_at', millis, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('radius_states_expiry').on('radius_states').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('radius_states').ifExists().execute();
  await db.schema.dropTable('radius_clients').ifExists().execute();
}
