import { type CreateTableBuilder, type Kysely, sql } from 'kysely';

/** Adds an auto-increment integer primary key `id` in the dialect's own way. */
export function withId<T extends string>(db: Kysely<unknown>, table: CreateTableBuilder<T, never>) {
  const adapter = db.getExecutor().adapter;
  const isPostgres = adapter.constructor.name.toLowerCase().includes('postgres');
  return isPostgres
    ? table.addColumn('id' as never, 'serial', (c) => c.primaryKey())
    : table.addColumn('id' as never, 'integer', (c) => c.primaryKey().autoIncrement());
}

/** Column type for epoch milliseconds (exceeds 32 bits). */
export const millis = 'bigint' as const;
/** Short indexed text (MySQL cannot index TEXT without a length). */
export const key = 'varchar(255)' as const;
/** Long text. */
export const text = sql`text`;
