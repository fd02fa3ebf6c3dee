import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql, type RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import { Type, type Static } from 'typebox';
import { Errors, UserStoreUnavailableError } from '../errors.ts';
import { defineResolverType, Digits, invalidResolverConfig, parseFieldMap } from './config.ts';
import { hashCostProblem, hashScheme, verifyPassword } from './passwords.ts';
import { PasswordCheckUnavailable } from './password-pool.ts';
import type { ConfiguredHost, StoreDeps, StoreHealth, StoreUser, StoredResolverConfig, UserInfo, UserSearch, UserStore } from './types.ts';
import { checkedSocket, connectChecked, createHostPolicy, type HostPolicy } from '../util/net.ts';
import { plainError } from '../util/plain-errors.ts';

/**
 * SQL user store (LinOTP type `sqlresolver`, spec 7.2) on SQLite, PostgreSQL or
 * MariaDB/MySQL, with its own small connection pool (never otpd's database
 * connection). Users live in one table (`Table`), filtered by an optional SQL
 * condition (`Where`), with columns mapped by `Map`. Passwords are read only
 * for a password check and never cached; formats: see passwords.ts.
 */

export const SQL_CLASS_PREFIX = 'useridresolver.SQLIdResolver.IdResolver';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Error codes that mean the database server did not answer at all. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOTALLOWED']);
const TABLE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/** `sqlresolver` configuration (LinOTP's keys). `Connect` or `Driver` (+ `Database`) says where the users are. */
export const sqlConfigSchema = Type.Object({
  Connect: Type.Optional(Type.String({ description: 'database URL, e.g. postgresql://user@host:5432/db, mysql://…, sqlite:////path/users.db (alternative to Driver…Database)' })),
  Driver: Type.Optional(Type.String({ description: 'sqlite, postgresql or mysql (SQLAlchemy names like postgresql+psycopg2 are accepted)' })),
  Server: Type.Optional(Type.String({ description: 'database host' })),
  Port: Type.Optional(Digits({ description: 'database port' })),
  Database: Type.Optional(Type.String({ description: 'database name (SQLite: file path)' })),
  User: Type.Optional(Type.String({ description: 'database user' })),
  Password: Type.Optional(Type.String({ secret: true, description: 'database password (stored encrypted); one inside Connect moves here' })),
  conParams: Type.Optional(Type.String({ description: 'extra URL query parameters, e.g. sslmode=require' })),
  Table: Type.String({ pattern: TABLE.source, errorMessage: 'letters, digits and _ only (optionally schema.table)', description: 'table (or schema.table) with the users' }),
  Where: Type.Optional(Type.String({
    pattern: '^(?![\\s\\S]*(;|--|/\\*))',
    errorMessage: 'no ";" and no comments',
    description: 'extra SQL condition, e.g. active = 1 (trusted admin input; no ; or comments)',
  })),
  Map: Type.String({ description: 'JSON map of otpd user fields to columns: userid, username, password, optional salt, email, mobile, …' }),
  Limit: Digits({ default: '1000', description: 'maximum rows for user lists' }),
  Encoding: Type.String({ default: 'utf-8', description: 'accepted for compatibility (drivers use UTF-8)' }),
  TIMEOUT: Digits({ default: '5', description: 'seconds for connect and each query' }),
  readonly: Type.Optional(Type.String({ description: 'accepted for compatibility' })),
});

export type SqlConfig = Static<typeof sqlConfigSchema>;

type Dialect = 'sqlite' | 'postgres' | 'mysql';

function dialectOf(driver: string): Dialect | undefined {
  const d = driver.toLowerCase();
  if (d.startsWith('sqlite')) return 'sqlite';
  if (d.startsWith('postgres')) return 'postgres';
  if (d.startsWith('mysql') || d.startsWith('mariadb')) return 'mysql';
  return undefined;
}

interface Target {
  dialect: Dialect;
  /** SQLite file path */
  path?: string;
  /** PostgreSQL / MySQL URL without password */
  url?: URL;
}

/** Parses `Connect` (SQLAlchemy-style URLs accepted) or builds the target from Driver/Server/Port/Database/User. */
function target(c: SqlConfig): Target {
  if (c.Connect) {
    const m = /^([A-Za-z0-9+]+):(.*)$/.exec(c.Connect);
    const dialect = m ? dialectOf(m[1]) : undefined;
    if (!m || !dialect) throw invalidResolverConfig('Connect', 'use sqlite:, postgresql:// or mysql:// URLs');
    if (dialect === 'sqlite') {
      // sqlite:////abs/path (SQLAlchemy), sqlite:///relative, sqlite:/abs, sqlite:path
      let path = m[2];
      if (path.startsWith('///')) path = path.slice(3);
      else if (path.startsWith('//')) path = path.slice(2);
      if (!path) throw invalidResolverConfig('Connect', 'SQLite needs a file path');
      return { dialect, path };
    }
    let url: URL;
    try {
      url = new URL(`${dialect === 'postgres' ? 'postgres' : 'mysql'}:${m[2]}`);
    } catch {
      throw invalidResolverConfig('Connect', 'not a URL');
    }
    return { dialect, url };
  }
  if (!c.Driver) throw Errors.missingParameter({ name: 'Connect or Driver' });
  const dialect = dialectOf(c.Driver);
  if (!dialect) throw invalidResolverConfig('Driver', `unsupported driver ${c.Driver}: use sqlite, postgresql or mysql`);
  if (!c.Database) throw Errors.missingParameter({ name: 'Database' });
  if (dialect === 'sqlite') return { dialect, path: c.Database };
  const url = new URL(`${dialect === 'postgres' ? 'postgres' : 'mysql'}://localhost`);
  url.hostname = c.Server || '127.0.0.1';
  if (c.Port) url.port = c.Port;
  if (c.User) url.username = encodeURIComponent(c.User);
  url.pathname = `/${encodeURIComponent(c.Database)}`;
  if (c.conParams) url.search = c.conParams.replace(/^\?/, '');
  return { dialect, url };
}

/** Before the schema: a password inside Connect moves to the encrypted Password key; Map is written canonically. */
function prepare(config: StoredResolverConfig): StoredResolverConfig {
  const out = { ...config };
  if (out.Connect) {
    const m = /^([A-Za-z0-9+]+:\/\/)([^@/]*)@(.*)$/.exec(out.Connect);
    if (m && m[2].includes(':')) {
      const [user, ...rest] = m[2].split(':');
      if (!out.Password) out.Password = decodeURIComponent(rest.join(':'));
      out.Connect = `${m[1]}${user}@${m[3]}`;
    }
  }
  if (out.Map !== undefined) {
    try {
      out.Map = JSON.stringify(JSON.parse(out.Map));
    } catch {
      // left as sent: check() names the problem
    }
  }
  return out;
}

/** `Map`: otpd user field → column, both plain identifiers; userid and username required. */
function columnMap(raw: string): Record<string, string> {
  const out = parseFieldMap('Map', raw, IDENT, { pattern: IDENT, what: 'a column name' });
  if (!out.userid) throw invalidResolverConfig('Map.userid', 'required');
  if (!out.username) throw invalidResolverConfig('Map.username', 'required');
  return out;
}

/** After the schema: where the database is, and the column map. */
function check(config: SqlConfig): void {
  target(config);
  columnMap(config.Map);
}

class SqlStore implements UserStore {
  private db: Kysely<any> | undefined;
  private readonly target: Target;
  private readonly map: Record<string, string>;
  private readonly table: string;
  private readonly where: string;
  private readonly limit: number;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly hosts: HostPolicy;

  constructor(private readonly name: string, private readonly config: SqlConfig, deps: StoreDeps) {
    this.target = target(config);
    this.hosts = deps.hosts ?? createHostPolicy({ purpose: 'user stores' });
    this.map = columnMap(config.Map);
    this.table = config.Table;
    this.where = config.Where ?? '';
    this.limit = Number(config.Limit) || 1000;
    this.timeoutMs = (Number(config.TIMEOUT) || 5) * 1000;
    this.logger = deps.logger.child({ resolver: name });
  }

  private async connection(): Promise<Kysely<any>> {
    if (this.db) return this.db;
    const t = this.target;
    if (t.dialect === 'sqlite') {
      const { default: SQLite } = await import('better-sqlite3');
      const database = new SQLite(t.path!, { readonly: true, fileMustExist: true, timeout: this.timeoutMs });
      this.db = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
    } else if (t.dialect === 'postgres') {
      const pg = await import('pg');
      const hosts = this.hosts;
      const pool = new pg.default.Pool({
        connectionString: t.url!.toString(),
        // every new connection asks the host policy (name and resolved addresses); unix sockets are local IPC
        stream: () => checkedSocket(hosts),
        ...(this.config.Password ? { password: this.config.Password } : {}),
        max: 4,
        connectionTimeoutMillis: this.timeoutMs,
        query_timeout: this.timeoutMs,
        statement_timeout: this.timeoutMs,
        idleTimeoutMillis: 30_000,
      });
      pool.on('error', (e) => this.logger.warn({ reason: plainError(e) }, `user store '${this.name}': an idle SQL connection failed: ${plainError(e)}`));
      // a checked-out connection cut by the server must not crash the process (src/store/db.ts)
      pool.on('connect', (client) => client.on('error', () => undefined));
      this.db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    } else {
      const mysql = await import('mysql2');
      const url = t.url!;
      const pool = mysql.createPool({
        host: url.hostname,
        port: url.port ? Number(url.port) : 3306,
        user: decodeURIComponent(url.username),
        ...(this.config.Password ? { password: this.config.Password } : {}),
        database: decodeURIComponent(url.pathname.replace(/^\//, '')),
        connectionLimit: 4,
        connectTimeout: this.timeoutMs,
        charset: 'utf8mb4',
        stream: (opts: { config: { host?: string; port?: number } }) =>
          connectChecked(this.hosts, opts.config.port ?? 3306, opts.config.host ?? '127.0.0.1'),
      });
      this.db = new Kysely<any>({ dialect: new MysqlDialect({ pool }) });
    }
    return this.db;
  }

  /** Runs a query with the store's timeout; any failure becomes UserStoreUnavailableError. */
  private async run<T>(query: RawBuilder<T>): Promise<T[]> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const db = await this.connection();
      const result = await Promise.race([
        query.execute(db),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`query timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      return result.rows;
    } catch (e) {
      const reason = plainError(e).replace(this.config.Password || '\0', '***');
      // the server did not answer at all, or answered with an error (a wrong column, no permission, a timeout)
      const unreachable = NETWORK_CODES.has((e as NodeJS.ErrnoException).code ?? '');
      this.logger.error({ reason }, `user store '${this.name}' ${unreachable ? 'unreachable' : 'failed'}: ${reason}`);
      throw new UserStoreUnavailableError(this.name, reason);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Mapped info columns (never password or salt). */
  private infoColumns(): [string, string][] {
    return Object.entries(this.map).filter(([f]) => f !== 'password' && f !== 'salt');
  }

  private select(columns: [string, string][], condition: RawBuilder<unknown>, limit: number): RawBuilder<Record<string, unknown>> {
    const cols = sql.join(columns.map(([field, column]) => sql`${sql.ref(column)} as ${sql.ref(`f_${field}`)}`));
    const where = this.where ? sql`(${condition}) and (${sql.raw(this.where)})` : condition;
    return sql<Record<string, unknown>>`select ${cols} from ${sql.table(this.table)} where ${where} limit ${sql.lit(limit)}`;
  }

  private toUser(row: Record<string, unknown>): StoreUser {
    const str = (v: unknown) => (v === null || v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
    const login = str(row.f_username) ?? '';
    const userId = str(row.f_userid) ?? '';
    const info: UserInfo = { username: login, userid: userId };
    for (const [field] of this.infoColumns()) {
      if (field === 'username' || field === 'userid') continue;
      const v = str(row[`f_${field}`]);
      if (v !== undefined && v !== '') info[field] = v;
    }
    return { login, userId, info };
  }

  async lookup(login: string): Promise<StoreUser | null> {
    if (login === '' || login.includes('\0')) return null;
    const rows = await this.run(this.select(this.infoColumns(), sql`${sql.ref(this.map.username)} = ${login}`, 2));
    // Collations may be case-insensitive; the login must match exactly once.
    const exact = rows.filter((r) => String(r.f_username) === login);
    if (exact.length > 1 || (exact.length === 0 && rows.length > 1)) {
      this.logger.warn('login matches more than one row; refusing');
      return null;
    }
    const row = exact[0] ?? rows[0];
    return row ? this.toUser(row) : null;
  }

  async byId(userId: string): Promise<StoreUser | null> {
    if (userId === '' || userId.includes('\0')) return null;
    const rows = await this.run(this.select(this.infoColumns(), sql`${sql.ref(this.map.userid)} = ${userId}`, 2));
    return rows.length === 1 ? this.toUser(rows[0]) : null;
  }

  async checkPassword(user: StoreUser, password: string): Promise<boolean> {
    if (typeof password !== 'string' || password === '' || password.includes('\0')) return false;
    if (!this.map.password) return false;
    const cols: [string, string][] = [['password', this.map.password], ['username', this.map.username]];
    if (this.map.salt) cols.push(['salt', this.map.salt]);
    const rows = await this.run(this.select(cols, sql`${sql.ref(this.map.userid)} = ${user.userId}`, 2));
    if (rows.length !== 1) return false;
    const stored = rows[0].f_password;
    const hash = stored === null || stored === undefined ? '' : Buffer.isBuffer(stored) ? stored.toString('utf8') : String(stored);
    if (hash && !hashScheme(hash)) this.logger.warn('stored password has an unsupported format; refusing');
    const tooCostly = hashCostProblem(hash);
    if (tooCostly) {
      this.logger.warn(`stored password hash of a user of resolver ${this.name} is ${tooCostly}; refusing it as a wrong password: rehash these passwords with a lower cost`);
      return false;
    }
    const salt = rows[0].f_salt;
    try {
      return await verifyPassword(password, hash, salt === null || salt === undefined ? undefined : String(salt));
    } catch (e) {
      if (e instanceof PasswordCheckUnavailable) throw new UserStoreUnavailableError(this.name, e.message);
      throw e;
    }
  }

  async search(search: UserSearch, limit: number): Promise<StoreUser[]> {
    const conditions: RawBuilder<unknown>[] = [sql`1 = 1`];
    for (const [field, pattern] of Object.entries(search)) {
      if (pattern === undefined || pattern === '' || pattern === '*') continue;
      const column = this.map[field];
      if (!column) continue;
      const like = pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replaceAll('*', '%');
      conditions.push(sql`${sql.ref(column)} like ${like} escape ${'\\'}`);
    }
    const rows = await this.run(this.select(this.infoColumns(), sql.join(conditions, sql` and `), Math.min(limit, this.limit)));
    return rows.map((r) => this.toUser(r)).filter((u) => u.login !== '');
  }

  async test(): Promise<StoreHealth> {
    const steps: string[] = [];
    try {
      const where = this.where ? sql`where ${sql.raw(this.where)}` : sql``;
      const [count] = await this.run(sql<{ n: unknown }>`select count(*) as n from ${sql.table(this.table)} ${where}`);
      steps.push('connected', `found ${Number(count.n)} user(s)`);
      const [sample] = await this.search({}, 1);
      return { ok: true, steps, userCount: Number(count.n), ...(sample ? { sample: sample.info } : {}) };
    } catch (e) {
      return { ok: false, steps, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    await db?.destroy();
  }
}

export const sqlResolverType = defineResolverType({
  type: 'sqlresolver',
  classPrefix: SQL_CLASS_PREFIX,
  schema: sqlConfigSchema,
  prepare,
  check,
  hosts: (config): ConfiguredHost[] => {
    const t = target(config);
    if (!t.url || t.url.hostname === '') return [];
    return [{ key: config.Connect ? 'Connect' : 'Server', host: t.url.hostname }];
  },
  create: (name, config, deps) => new SqlStore(name, config, deps),
});
