import type { Kysely } from 'kysely';
import { key } from './util.ts';

/**
 * Audit rows get `reason`: a stable code for why a request ended as it did (a validation
 * reason, src/validation/reasons.ts, or an error's catalogue key), beside the free text in
 * `action_detail`. Existing rows get '' and keep their chain hashes: the writer hashes it, like
 * `request_id` (0630), among the later columns, and only when it is set.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit').addColumn('reason', key, (c) => c.notNull().defaultTo('')).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit').dropColumn('reason').execute();
}
