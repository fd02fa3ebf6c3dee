import { isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { AndFilter, Client, EqualityFilter, FilterParser, InvalidCredentialsError, ResultCodeError, type Entry, type Filter } from 'ldapts';
import type { Logger } from 'pino';
import { UserStoreUnavailableError } from '../errors.ts';
import { checkedSocket, connectChecked, createHostPolicy, type HostPolicy } from '../util/net.ts';
import { plainError } from '../util/plain-errors.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { defineResolverType } from './config.ts';
import { checkLdapConfig, ldapConfigSchema, ldapSettings, prepareLdapConfig, type LdapConfig, type LdapSettings } from './ldap-config.ts';
import { escapeFilterPattern, escapeFilterValue, generalizedTime, guidToBytes, guidToString, isUnderBase } from './ldap-values.ts';
import type { ConfiguredHost, StoreDeps, StoreHealth, StoreUser, UserInfo, UserSearch, UserStore } from './types.ts';

export { CircuitBreaker } from './circuit-breaker.ts';
export { LDAP_PRESETS } from './ldap-config.ts';
export { escapeFilterPattern, escapeFilterValue, guidToBytes, guidToString } from './ldap-values.ts';

/**
 * LDAP / Active Directory user store (LinOTP type `ldapresolver`, spec 7.1).
 *
 * Safety rules (security.md items 25, 26):
 * - logins are escaped per RFC 4515 before they enter a filter;
 * - a password check binds as the user's DN and refuses an empty password, one
 *   containing NUL, or an empty DN before any bind; a bind the server treats as
 *   anonymous (Who-am-I answers empty) is never a success;
 * - TLS: StartTLS on `ldap://` and certificate verification are on by default;
 * - every connection has a connect and a response timeout, every URI of the
 *   comma list is tried in order, a failing server is skipped for a while
 *   (circuit breaker), and when no server answers the caller gets
 *   UserStoreUnavailableError — never a hang, never "authenticated".
 */

export const LDAP_CLASS_PREFIX = 'useridresolver.LDAPIdResolver.IdResolver';

/** Result codes that mean "this server cannot serve now" (try the next one). */
const SERVER_RESULT_CODES = new Set([51 /* busy */, 52 /* unavailable */, 80 /* other */]);

/** True for network, TLS and timeout errors and busy/unavailable answers. */
function isServerFailure(e: unknown): boolean {
  if (e instanceof ResultCodeError) return SERVER_RESULT_CODES.has(e.code);
  return true;
}

/** A failure in words: the LDAP result code, otpd's own reason, or the network error (util/plain-errors.ts). */
function describe(e: unknown): string {
  if (e instanceof ResultCodeError) return `LDAP result ${e.code} ${e.message.split('\n')[0]}`;
  if (e instanceof UserStoreUnavailableError) return e.reason;
  return plainError(e);
}

function firstValue(value: Entry[string] | undefined): string | Buffer | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length > 0 ? value[0] : undefined;
  return value;
}

class LdapStore implements UserStore {
  private readonly cfg: LdapSettings;
  private readonly breaker: CircuitBreaker;
  private readonly logger: Logger;
  private readonly hosts: HostPolicy;

  constructor(private readonly name: string, config: LdapConfig, private readonly deps: StoreDeps) {
    this.cfg = ldapSettings(config);
    this.hosts = deps.hosts ?? createHostPolicy({ purpose: 'user stores' });
    this.breaker = new CircuitBreaker(deps.clock, this.cfg.blockMs);
    this.logger = deps.logger.child({ resolver: name });
    if (!this.cfg.onlyTrustedCerts) this.logger.warn('LDAP certificate verification is switched off (only_trusted_certs=False)');
  }

  private get uidKind(): 'dn' | 'guid' | 'attribute' {
    const t = this.cfg.uidType.toLowerCase();
    if (t === 'dn') return 'dn';
    if (t === 'objectguid' || t === 'guid') return 'guid';
    return 'attribute';
  }

  private get uidAttribute(): string {
    return this.uidKind === 'guid' ? 'objectGUID' : this.cfg.uidType;
  }

  private attributes(): string[] {
    const attrs = new Set<string>([this.cfg.loginAttribute, ...Object.values(this.cfg.userInfo)]);
    if (this.uidKind !== 'dn') attrs.add(this.uidAttribute);
    return [...attrs];
  }

  private tlsOptions(host: string): ConnectionOptions {
    return {
      host,
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: this.cfg.onlyTrustedCerts,
      ...(this.cfg.ca ? { ca: this.cfg.ca } : {}),
    };
  }

  /** Sockets through the host policy, so a DNS answer is checked too (resolved addresses, not just the name). */
  private socketFactories(): { createConnection: typeof import('node:net').connect; createSecureConnection: typeof tlsConnect } {
    const hosts = this.hosts;
    const createConnection = ((port: number, host: string) => connectChecked(hosts, port, host)) as unknown as typeof import('node:net').connect;
    const createSecureConnection = ((...args: unknown[]) => {
      // StartTLS upgrades the already checked socket: tls.connect({ socket, … })
      if (typeof args[0] === 'object') return tlsConnect(args[0] as ConnectionOptions);
      const [port, host, options] = args as [number, string, ConnectionOptions | undefined];
      return tlsConnect({ ...options, socket: checkedSocket(hosts).connect(port, host) });
    }) as unknown as typeof tlsConnect;
    return { createConnection, createSecureConnection };
  }

  /**
   * Runs `fn` on the first server that answers: connect (+ StartTLS), then fn.
   * Server failures move on to the next URI and open the breaker for that server.
   */
  private async withServer<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const servers = this.breaker.available(this.cfg.uris);
    if (servers.length === 0) {
      const seconds = Math.ceil(this.breaker.retryInMs(this.cfg.uris) / 1000);
      throw new UserStoreUnavailableError(this.name, `every LDAP server failed recently; next try in ${seconds} s`);
    }
    const failures: string[] = [];
    // an outage the failover handles: one warning a server (its reason, no stack), then one error when none answered
    let answered = false; // some server answered (refused StartTLS, the service bind, a search), so not "unreachable"
    const serverFailed = (uri: string, reason: string, network = false) => {
      answered ||= !network;
      failures.push(`${uri}: ${reason}`);
      const more = servers.indexOf(uri) < servers.length - 1 ? '; trying the next one' : '';
      this.logger.warn({ server: uri, reason }, `user store '${this.name}': LDAP server ${uri} failed: ${reason}${more}`);
    };
    for (const uri of servers) {
      const url = new URL(uri);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      // the host policy (UserStore* settings) is asked before connecting: a refusal is not a server failure
      const refusal = this.hosts.refuse(host);
      if (refusal) {
        serverFailed(uri, refusal, true);
        continue;
      }
      const client = new Client({
        url: uri,
        connectTimeout: this.cfg.connectTimeoutMs,
        timeout: this.cfg.responseTimeoutMs,
        strictDN: false,
        ...(url.protocol === 'ldaps:' ? { tlsOptions: this.tlsOptions(host) } : {}),
        ...this.socketFactories(),
      });
      try {
        if (url.protocol === 'ldap:' && this.cfg.enforceTls) {
          try {
            await client.startTLS(this.tlsOptions(host));
          } catch (e) {
            // Not the user's fault: the store cannot be asked safely (issue 10 #12), never "wrong password".
            const why = e instanceof ResultCodeError && (e.code === 2 || e.code === 53)
              ? 'the server does not support StartTLS: use ldaps:// or set EnforceTLS off'
              : `StartTLS failed: ${describe(e)}`;
            this.breaker.fail(uri);
            serverFailed(uri, why);
            continue;
          }
        }
        const result = await fn(client);
        this.breaker.succeed(uri);
        return result;
      } catch (e) {
        if (!isServerFailure(e)) throw e;
        this.breaker.fail(uri);
        serverFailed(uri, describe(e), !(e instanceof ResultCodeError || e instanceof UserStoreUnavailableError));
      } finally {
        await closeQuietly(client);
      }
    }
    this.logger.error({ servers: failures }, `user store '${this.name}' ${answered ? 'unavailable' : 'unreachable'}: ${failures.join('; ')}`);
    throw new UserStoreUnavailableError(this.name, failures.join('; '));
  }

  /** Binds with the service account (or stays anonymous when BINDDN is empty). */
  private async serviceBind(client: Client): Promise<void> {
    if (!this.cfg.bindDn) return;
    try {
      await client.bind(this.cfg.bindDn, this.cfg.bindPw);
    } catch (e) {
      if (e instanceof InvalidCredentialsError) {
        throw new UserStoreUnavailableError(this.name, 'service bind failed: invalid BINDDN/BINDPW');
      }
      throw e;
    }
  }

  private async searchEntries(client: Client, base: string, filter: string | Filter, scope: 'sub' | 'base', limit: number): Promise<Entry[]> {
    try {
      const res = await client.search(base, {
        scope,
        filter,
        attributes: this.attributes(),
        explicitBufferAttributes: this.uidKind === 'guid' ? ['objectGUID'] : [],
        sizeLimit: limit,
        timeLimit: Math.ceil(this.cfg.responseTimeoutMs / 1000),
      });
      return res.searchEntries;
    } catch (e) {
      if (e instanceof ResultCodeError && e.code === 32 /* noSuchObject */) return [];
      if (e instanceof ResultCodeError && !isServerFailure(e)) {
        throw new UserStoreUnavailableError(this.name, `search failed: ${describe(e)}`);
      }
      throw e;
    }
  }

  private toUser(entry: Entry, typedLogin?: string): StoreUser {
    const text = (attr: string): string | undefined => {
      const v = firstValue(entry[attr] ?? entry[Object.keys(entry).find((k) => k.toLowerCase() === attr.toLowerCase()) ?? '']);
      if (v === undefined) return undefined;
      return Buffer.isBuffer(v) ? v.toString('utf8') : v;
    };
    let userId: string;
    if (this.uidKind === 'dn') userId = entry.dn;
    else if (this.uidKind === 'guid') {
      const raw = firstValue(entry.objectGUID ?? entry.objectguid);
      userId = raw === undefined ? '' : guidToString(Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'binary'));
    } else userId = text(this.uidAttribute) ?? '';
    const login = typedLogin ?? text(this.cfg.loginAttribute) ?? '';
    const info: UserInfo = { username: login, userid: userId };
    for (const [field, attr] of Object.entries(this.cfg.userInfo)) {
      if (field === 'username' || field === 'userid') continue;
      const v = text(attr);
      if (v !== undefined && v !== '') info[field] = v;
    }
    if (this.cfg.userInfo.username && typedLogin === undefined) info.username = text(this.cfg.userInfo.username) ?? login;
    return { login, userId, info, dn: entry.dn };
  }

  private listFilter(extra = ''): string {
    return `(&${this.cfg.searchFilter}${extra})`;
  }

  async lookup(login: string): Promise<StoreUser | null> {
    if (login === '' || login.includes('\0')) return null;
    const filter = this.cfg.filter
      .replaceAll('%(now)s', generalizedTime(this.deps.clock.now()))
      .replaceAll('%s', escapeFilterValue(login));
    const entries = await this.withServer(async (client) => {
      await this.serviceBind(client);
      return this.searchEntries(client, this.cfg.base, filter, 'sub', 2);
    });
    if (entries.length > 1) {
      this.logger.warn({ count: entries.length }, 'login matches more than one LDAP entry; refusing');
      return null;
    }
    return entries.length === 1 ? this.toUser(entries[0], login) : null;
  }

  async byId(userId: string): Promise<StoreUser | null> {
    if (userId === '' || userId.includes('\0')) return null;
    const entries = await this.withServer(async (client) => {
      await this.serviceBind(client);
      if (this.uidKind === 'dn') {
        if (!isUnderBase(userId, this.cfg.base)) return [];
        return this.searchEntries(client, userId, this.listFilter(), 'base', 2);
      }
      if (this.uidKind === 'guid') {
        const bytes = guidToBytes(userId);
        if (!bytes) return [];
        // binary value: built as a filter object (string escapes would be re-encoded as UTF-8)
        const filter = new AndFilter({
          filters: [FilterParser.parseString(this.listFilter()), new EqualityFilter({ attribute: 'objectGUID', value: bytes })],
        });
        return this.searchEntries(client, this.cfg.base, filter, 'sub', 2);
      }
      const value = escapeFilterValue(userId);
      return this.searchEntries(client, this.cfg.base, this.listFilter(`(${this.uidAttribute}=${value})`), 'sub', 2);
    });
    if (entries.length !== 1) return null;
    const user = this.toUser(entries[0]);
    return user.login ? user : null;
  }

  async checkPassword(user: StoreUser, password: string): Promise<boolean> {
    // security.md 25: refused before any bind.
    if (typeof password !== 'string' || password === '' || password.includes('\0')) return false;
    const dn = user.dn ?? (this.uidKind === 'dn' ? user.userId : undefined);
    if (!dn || dn.includes('\0')) return false;
    return this.withServer(async (client) => {
      try {
        await client.bind(dn, password);
      } catch (e) {
        if (e instanceof InvalidCredentialsError) return false;
        if (isServerFailure(e)) throw e;
        this.logger.info({ reason: describe(e) }, 'user bind refused');
        return false;
      }
      // An unauthenticated bind (DN + empty password) is anonymous on many servers;
      // ask who we are and refuse when the server answers "anonymous".
      const who = await client.exop('1.3.6.1.4.1.4203.1.11.3').catch(() => undefined);
      if (who !== undefined && (who.value ?? '') === '') {
        this.logger.warn('bind succeeded but the server reports an anonymous session; refusing');
        return false;
      }
      return true;
    });
  }

  async search(search: UserSearch, limit: number): Promise<StoreUser[]> {
    let extra = '';
    for (const [field, pattern] of Object.entries(search)) {
      if (pattern === undefined || pattern === '' || pattern === '*') continue;
      const attr = field === 'username' ? (this.cfg.userInfo.username ?? this.cfg.loginAttribute) : this.cfg.userInfo[field];
      if (!attr) continue;
      extra += `(${attr}=${escapeFilterPattern(pattern)})`;
    }
    const max = Math.min(limit, this.cfg.sizeLimit);
    const entries = await this.withServer(async (client) => {
      await this.serviceBind(client);
      return this.pagedSearch(client, this.listFilter(extra), max);
    });
    return entries.map((e) => this.toUser(e)).filter((u) => u.login !== '');
  }

  private async pagedSearch(client: Client, filter: string, max: number): Promise<Entry[]> {
    const out: Entry[] = [];
    try {
      for await (const page of client.searchPaginated(this.cfg.base, {
        scope: 'sub',
        filter,
        attributes: this.attributes(),
        explicitBufferAttributes: this.uidKind === 'guid' ? ['objectGUID'] : [],
        paged: { pageSize: Math.min(max, 200) },
        sizeLimit: max,
        timeLimit: Math.ceil(this.cfg.responseTimeoutMs / 1000),
      })) {
        out.push(...page.searchEntries);
        if (out.length >= max) break;
      }
    } catch (e) {
      // The server stops at the size limit; what arrived so far is the answer.
      if (e instanceof ResultCodeError && e.code === 4 /* sizeLimitExceeded */) return out.slice(0, max);
      if (e instanceof ResultCodeError && e.code === 32) return [];
      if (e instanceof ResultCodeError && !isServerFailure(e)) {
        throw new UserStoreUnavailableError(this.name, `search failed: ${describe(e)}`);
      }
      throw e;
    }
    return out.slice(0, max);
  }

  async test(): Promise<StoreHealth> {
    const steps: string[] = [];
    try {
      const entries = await this.withServer(async (client) => {
        steps.push(this.cfg.enforceTls ? 'connected (TLS)' : 'connected');
        await this.serviceBind(client);
        steps.push(this.cfg.bindDn ? `bound as ${this.cfg.bindDn}` : 'anonymous');
        return this.pagedSearch(client, this.listFilter(), this.cfg.sizeLimit);
      });
      steps.push(`found ${entries.length} user(s)`);
      const sample = entries.length > 0 ? this.toUser(entries[0]).info : undefined;
      return { ok: true, steps, userCount: entries.length, ...(sample ? { sample } : {}) };
    } catch (e) {
      return { ok: false, steps, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async close(): Promise<void> {
    // no pooled connections: every operation opens and unbinds its own
  }
}

/** unbind() in finally, bounded: a dead socket must not keep the request (or node) alive. */
async function closeQuietly(client: Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.unbind().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000);
      timer.unref();
    }),
  ]);
  if (timer) clearTimeout(timer);
}

export const ldapResolverType = defineResolverType({
  type: 'ldapresolver',
  classPrefix: LDAP_CLASS_PREFIX,
  schema: ldapConfigSchema,
  prepare: prepareLdapConfig,
  check: checkLdapConfig,
  create: (name, config, deps) => new LdapStore(name, config, deps),
  hosts: (config): ConfiguredHost[] =>
    config.LDAPURI.split(',').map((u) => u.trim()).filter(Boolean).map((uri) => ({ key: 'LDAPURI', host: new URL(uri).hostname })),
});
