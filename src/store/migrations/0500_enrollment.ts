import type { Kysely } from 'kysely';
import { key, millis } from './util.ts';

/**
 * Autoenrollment claims: one row per directory user (resolver + user id) that got
 * an autoenrolled token. The primary key makes parallel first logins create
 * exactly one token; the row goes with its token (cascade) and a stale claim
 * (token unassigned) is released by the next enrollment.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('enrollment_claims')
    .addColumn('resolver', key, (c) => c.notNull())
    .addColumn('user_id', key, (c) => c.notNull())
    .addColumn('token_id', 'integer', (c) => c.notNull().references('tokens.id').onDelete('cascade'))
    .addColumn('created_at', millis, (c) => c.notNull())
    .addPrimaryKeyConstraint('enrollment_claims_pk', ['resolver', 'user_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('enrollment_claims').ifExists().execute();
}
