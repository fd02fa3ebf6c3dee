import type { Kysely } from 'kysely';
import { key, millis, text } from './util.ts';

/**
 * User stores (resolvers) and realms (spec 7). Resolver configs are JSON with
 * secret values (BINDPW, SQL Password) sealed by the key ring; realms list
 * resolver names in lookup order. The default realm is the config key DefaultRealm.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('resolvers')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('type', 'varchar(32)', (c) => c.notNull())
    .addColumn('config', text, (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('updated_at', millis, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('realms')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('resolvers', text, (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('realms').ifExists().execute();
  await db.schema.dropTable('resolvers').ifExists().execute();
}
