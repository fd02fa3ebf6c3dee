import type { Kysely } from 'kysely';
import { key, millis } from './util.ts';

/**
 * Self-service sessions (`/userservice/login`, cookie `user_selfservice`): the cookie is stored
 * only as a keyed hash, with the user it stands for and its expiry, shared by all nodes.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('user_sessions')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('realm', key, (c) => c.notNull())
    .addColumn('resolver', key, (c) => c.notNull())
    .addColumn('user_id', key, (c) => c.notNull())
    .addColumn('login', key, (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('expires_at', millis, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('user_sessions_expiry').on('user_sessions').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('user_sessions').ifExists().execute();
}
