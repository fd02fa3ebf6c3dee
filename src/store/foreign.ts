import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { redactUrl } from './db.ts';

/** Another system's database, opened to read it (`otpd import linotp`): untyped tables, no migrations. */
export interface ForeignDb {
  // the tables are another system's: their types are checked where the rows are read
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  kysely: Kysely<any>;
  dialect: 'sqlite' | 'postgres' | 'mysql';
  safeUrl: string;
  close(): Promise<void>;
}

/**
 * Opens a database by URL for reading: `sqlite:<path>` (opened read-only, the file must exist),
 * `postgres://…`, `mysql://…` / `mariadb://…`. Nothing is created or migrated.
 */
export async function openForeignDatabase(url: string): Promise<ForeignDb> {
  const safeUrl = redactUrl(url);
  if (url.startsWith('sqlite:')) {
    const { default: SQLite } = await import('better-sqlite3');
    const database = new SQLite(url.slice('sqlite:'.length), { readonly: true, fileMustExist: true });
    const kysely = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
    return { kysely, dialect: 'sqlite', safeUrl, close: () => kysely.destroy() };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const pg = await import('pg');
    const pool = new pg.default.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 });
    pool.on('error', () => undefined);
    const kysely = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    await sql`select 1`.execute(kysely);
    return { kysely, dialect: 'postgres', safeUrl, close: () => kysely.destroy() };
  }
  if (/^(mysql|mariadb):\/\//.test(url)) {
    const mysql = await import('mysql2');
    const pool = mysql.createPool({ uri: url.replace(/^mariadb:/, 'mysql:'), connectionLimit: 2, connectTimeout: 5000, timezone: 'Z' });
    const kysely = new Kysely<any>({ dialect: new MysqlDialect({ pool }) });
    await sql`select 1`.execute(kysely);
    return { kysely, dialect: 'mysql', safeUrl, close: () => kysely.destroy() };
  }
  throw new Error(`unsupported database URL scheme: ${safeUrl} (use sqlite:<path>, postgres:// or mysql://)`);
}
