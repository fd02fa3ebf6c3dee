import type { Kysely } from 'kysely';
import { key } from './util.ts';

/**
 * Self-service sessions get the state of the two-step login (spec 1.6): `credentials_verified`
 * after the password (the second factor is still owed), `challenge_triggered` with the
 * transaction of the code sent, `authenticated` for a session that may call the API; and
 * `mfa`, set when the session was opened with a second factor (rebinding needs it, B.2 #24).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('user_sessions').addColumn('state', key, (c) => c.notNull().defaultTo('authenticated')).execute();
  await db.schema.alterTable('user_sessions').addColumn('mfa', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('user_sessions').addColumn('transaction_id', key, (c) => c.notNull().defaultTo('')).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const c of ['transaction_id', 'mfa', 'state']) await db.schema.alterTable('user_sessions').dropColumn(c).execute();
}
