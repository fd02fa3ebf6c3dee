import type { Kysely } from 'kysely';

/**
 * Keyed audit chain. Rows get a `seq` (0 = written before this migration, under the
 * unkeyed SHA-256 chain; 1, 2, … = HMAC-SHA-256 chain under the key file's audit key),
 * the head gets the sequence of the newest row and `mac`, an HMAC over (sequence, last id,
 * last hash). The head stays unkeyed ('') until the first write after this migration,
 * which seals any existing unkeyed rows with a marker row (the migration has no key).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit').addColumn('seq', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.createIndex('audit_seq_idx').on('audit').column('seq').execute();
  await db.schema.alterTable('audit_head').addColumn('seq', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('audit_head').addColumn('mac', 'varchar(64)', (c) => c.notNull().defaultTo('')).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit_head').dropColumn('mac').execute();
  await db.schema.alterTable('audit_head').dropColumn('seq').execute();
  await db.schema.dropIndex('audit_seq_idx').on('audit').execute();
  await db.schema.alterTable('audit').dropColumn('seq').execute();
}
