import { readFile, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Type, type Static } from 'typebox';
import { UserStoreUnavailableError } from '../errors.ts';
import { defineResolverType } from './config.ts';
import { hashCostProblem, verifyPassword } from './passwords.ts';
import { PasswordCheckUnavailable } from './password-pool.ts';
import type { StoreDeps, StoreHealth, StoreUser, UserInfo, UserSearch, UserStore } from './types.ts';

/**
 * Flat-file user store (LinOTP type `passwdresolver`, spec 7.3): lines
 * `login:crypt:uid:gid:GECOS:home:shell`. The user id is the uid field. GECOS
 * comma fields: [0] full name (first word = given name, rest = surname),
 * [2] mobile and [3] phone (only when there are at least 4 fields), the first
 * of [4..] that looks like an e-mail address = email. Password: the crypt field
 * in any format of passwords.ts; `x`, `*`, `!…` and empty never authenticate.
 * The file is re-read when its modification time or size changes.
 */

export const PASSWD_CLASS_PREFIX = 'useridresolver.PasswdIdResolver.IdResolver';

/** `passwdresolver` configuration. LinOTP also accepted `filename`: keys match case-insensitively. */
export const passwdConfigSchema = Type.Object({
  fileName: Type.String({ minLength: 1, description: 'path of the passwd-format file, e.g. /etc/passwd' }),
  readonly: Type.Optional(Type.String({ description: 'accepted for compatibility' })),
});

export type PasswdConfig = Static<typeof passwdConfigSchema>;

interface Entry {
  user: StoreUser;
  crypt: string;
}

/** Parses one passwd line; undefined for comments, blank or malformed lines. */
export function parsePasswdLine(line: string): Entry | undefined {
  if (line.trim() === '' || line.startsWith('#')) return undefined;
  const f = line.split(':');
  if (f.length < 3 || f[0] === '') return undefined;
  const [login, crypt, uid] = f;
  const gecos = (f[4] ?? '').split(',');
  const info: UserInfo = { username: login, userid: uid };
  const fullName = gecos[0]?.trim() ?? '';
  if (fullName) {
    const [first, ...rest] = fullName.split(/\s+/);
    info.givenname = first;
    if (rest.length > 0) info.surname = rest.join(' ');
    info.description = fullName;
  }
  if (gecos.length >= 4) {
    if (gecos[2]?.trim()) info.mobile = gecos[2].trim();
    if (gecos[3]?.trim()) info.phone = gecos[3].trim();
  }
  const email = gecos.slice(4).map((g) => g.trim()).find((g) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(g));
  if (email) info.email = email;
  return { user: { login, userId: uid, info }, crypt };
}

class PasswdStore implements UserStore {
  private entries: Entry[] = [];
  private byLogin = new Map<string, Entry>();
  private byUid = new Map<string, Entry>();
  private signature = '';
  /** The read and parse of the file as it was at `sig`, while it runs. */
  private reading: { sig: string; done: Promise<void> } | undefined;
  private readonly file: string;
  private readonly logger: Logger;

  constructor(private readonly name: string, config: PasswdConfig, deps: StoreDeps) {
    this.file = config.fileName;
    this.logger = deps.logger.child({ resolver: name });
  }

  /** The look at the file that is running: lookups that start meanwhile take its answer. */
  private statting: Promise<string> | undefined;

  private async load(): Promise<void> {
    let sig: string;
    try {
      // one stat for every lookup that starts while it runs (a thread-pool round trip each, under
      // 50 parallel logins, was 3-4 % of a success): a lookup may take the answer of a stat that
      // began a fraction of a millisecond before it did, never an older one
      this.statting ??= stat(this.file).then((st) => `${st.mtimeMs}:${st.size}:${st.ino}`).finally(() => (this.statting = undefined));
      sig = await this.statting;
    } catch (e) {
      throw this.unreadable(e);
    }
    if (sig === this.signature) return;
    // lookups that find the same new file share one read and parse (a burst of 50 after a
    // start or an edit parsed it 50 times); each still looked at the file itself
    if (this.reading?.sig !== sig) {
      const done = this.read(sig).finally(() => {
        if (this.reading?.done === done) this.reading = undefined;
      });
      this.reading = { sig, done };
    }
    return this.reading.done;
  }

  private async read(sig: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      throw this.unreadable(e);
    }
    const entries = text.split(/\r?\n/).map(parsePasswdLine).filter((e): e is Entry => e !== undefined);
    this.entries = entries;
    this.byLogin = new Map();
    this.byUid = new Map();
    for (const e of entries) {
      if (!this.byLogin.has(e.user.login)) this.byLogin.set(e.user.login, e);
      if (!this.byUid.has(e.user.userId)) this.byUid.set(e.user.userId, e);
    }
    this.signature = sig;
    this.logger.debug({ users: entries.length }, 'passwd file loaded');
  }

  private unreadable(e: unknown): UserStoreUnavailableError {
    const reason = `cannot read ${this.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    this.logger.error({ file: this.file }, `user store '${this.name}' unavailable: ${reason}`);
    return new UserStoreUnavailableError(this.name, reason);
  }

  private copy(e: Entry | undefined): StoreUser | null {
    return e ? { ...e.user, info: { ...e.user.info } } : null;
  }

  async lookup(login: string): Promise<StoreUser | null> {
    await this.load();
    return this.copy(this.byLogin.get(login));
  }

  async byId(userId: string): Promise<StoreUser | null> {
    await this.load();
    return this.copy(this.byUid.get(userId));
  }

  async checkPassword(user: StoreUser, password: string): Promise<boolean> {
    if (typeof password !== 'string' || password === '' || password.includes('\0')) return false;
    await this.load();
    const entry = this.byUid.get(user.userId);
    if (!entry || entry.user.login !== user.login) return false;
    const tooCostly = hashCostProblem(entry.crypt);
    if (tooCostly) {
      this.logger.warn(`stored password hash of a user of resolver ${this.name} is ${tooCostly}; refusing it as a wrong password: rehash these passwords with a lower cost`);
      return false;
    }
    try {
      return await verifyPassword(password, entry.crypt);
    } catch (e) {
      if (e instanceof PasswordCheckUnavailable) throw new UserStoreUnavailableError(this.name, e.message);
      throw e;
    }
  }

  async search(search: UserSearch, limit: number): Promise<StoreUser[]> {
    await this.load();
    const tests = Object.entries(search)
      .filter(([, p]) => p !== undefined && p !== '' && p !== '*')
      .map(([field, pattern]) => {
        const re = new RegExp(`^${pattern!.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
        return (u: StoreUser) => re.test(u.info[field] ?? '');
      });
    const out: StoreUser[] = [];
    for (const e of this.entries) {
      if (tests.every((t) => t(e.user))) out.push(this.copy(e)!);
      if (out.length >= limit) break;
    }
    return out;
  }

  async test(): Promise<StoreHealth> {
    try {
      await this.load();
      const sample = this.entries[0]?.user.info;
      return { ok: true, steps: [`read ${this.file}`, `found ${this.entries.length} user(s)`], userCount: this.entries.length, ...(sample ? { sample: { ...sample } } : {}) };
    } catch (e) {
      return { ok: false, steps: [], error: (e as Error).message };
    }
  }

  async close(): Promise<void> {}
}

export const passwdResolverType = defineResolverType({
  type: 'passwdresolver',
  classPrefix: PASSWD_CLASS_PREFIX,
  schema: passwdConfigSchema,
  create: (name, config, deps) => new PasswdStore(name, config, deps),
});
