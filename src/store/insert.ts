import type { InsertQueryBuilder, InsertResult } from 'kysely';
import type { DialectName } from './db.ts';

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
