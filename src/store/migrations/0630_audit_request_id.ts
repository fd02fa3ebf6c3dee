import type { Kysely } from 'kysely';

/**
 * The id of the HTTP request that made an audit row (Fastify's `request.id`, also in every log
 * line of that request), so a log line leads to its audit row and back. '' for rows written
 * outside a request (RADIUS, the dispatcher) and for rows written before this migration; the
 * keyed chain hashes it only when set, so those rows keep their MAC.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit').addColumn('request_id', 'varchar(64)', (c) => c.notNull().defaultTo('')).execute();
  await db.schema.createIndex('audit_request_id_idx').on('audit').column('request_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('audit_request_id_idx').on('audit').execute();
  await db.schema.alterTable('audit').dropColumn('request_id').execute();
}
