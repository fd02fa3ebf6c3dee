import type { Kysely } from 'kysely';
import { key, millis } from './util.ts';

/**
 * Failed authentications per account (realm + directory user), independent of any
 * token row: counts wrong passwords before enrollment or under passthru too. One row
 * per account, never evicted, shared by every node, survives restarts.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('account_attempts')
    .addColumn('realm', key, (c) => c.notNull())
    .addColumn('user_key', key, (c) => c.notNull())
    .addColumn('login', key, (c) => c.notNull())
    .addColumn('fail_count', 'integer', (c) => c.notNull())
    .addColumn('delay_ms', millis, (c) => c.notNull())
    .addColumn('pending', 'integer', (c) => c.notNull())
    .addColumn('pending_at', millis, (c) => c.notNull())
    .addColumn('window_start', millis, (c) => c.notNull())
    .addColumn('last_attempt', millis, (c) => c.notNull())
    .addPrimaryKeyConstraint('account_attempts_pk', ['realm', 'user_key'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('account_attempts').ifExists().execute();
}
