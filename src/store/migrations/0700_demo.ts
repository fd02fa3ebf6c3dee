import type { Kysely } from 'kysely';
import { key, millis, text, withId } from './util.ts';

/**
 * Demo mode (docs/demo.md): the messages the capture providers kept instead of sending them,
 * and the objects the demo created (resolver, realm, policies, providers, RADIUS client, users
 * file), so they can be recognised and removed once the demo ends.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('demo_messages'))
    .addColumn('channel', 'varchar(16)', (c) => c.notNull())
    .addColumn('recipient', key, (c) => c.notNull())
    .addColumn('text_enc', text, (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('demo_objects')
    .addColumn('kind', 'varchar(32)', (c) => c.notNull())
    .addColumn('name', key, (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .addPrimaryKeyConstraint('demo_objects_pk', ['kind', 'name'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('demo_objects').ifExists().execute();
  await db.schema.dropTable('demo_messages').ifExists().execute();
}
