import type { InsertQueryBuilder, InsertResult, Kysely, Transaction } from 'kysely';
import type { DialectName } from './db.ts';
import type { Database } from './schema.ts';

/**
 * INSERT … that does nothing when the key exists, on all three dialects (`INSERT IGNORE` on
 * MariaDB, `ON CONFLICT DO NOTHING` elsewhere): `numInsertedOrUpdatedRows` tells who won a race.
 */
export function insertIgnore<T extends keyof Database>(dialect: DialectName, exec: Kysely<Database> | Transaction<Database>, table: T, values: any) {
  const q = exec.insertInto(table).values(values);
  return dialect === 'mysql' ? q.ignore() : q.onConflict((oc) => oc.doNothing());
}

/**
 * Runs an insert and returns the new auto-increment id on every dialect:
 * RETURNING on SQLite/PostgreSQL, insertId on MariaDB.
 */
export async function insertReturningId<DB, TB extends keyof DB>(
  dialect: DialectName,
  query: InsertQueryBuilder<DB, TB, InsertResult>,
): Promise<number> {
  if (dialect === 'mysql') {
    const result = await query.executeTakeFirstOrThrow();
    return Number(result.insertId);
  }
  const row = (await (query as unknown as InsertQueryBuilder<DB, TB, { id: number }>)
    .returning('id' as never)
    .executeTakeFirstOrThrow()) as { id: number };
  return Number(row.id);
}
