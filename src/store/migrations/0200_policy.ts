import type { Kysely } from 'kysely';
import { key, text } from './util.ts';

/** Policies (LinOTP's fields; spec 3.2). The policy engine caches them; see src/policy/service.ts. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('policies')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('scope', 'varchar(32)', (c) => c.notNull())
    .addColumn('action', text, (c) => c.notNull())
    .addColumn('realm', text, (c) => c.notNull())
    .addColumn('user', text, (c) => c.notNull())
    .addColumn('client', text, (c) => c.notNull())
    .addColumn('time', 'varchar(1024)', (c) => c.notNull())
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('policies').ifExists().execute();
}
