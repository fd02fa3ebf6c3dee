import type { TObject } from 'typebox';
import type { Logger } from 'pino';
import type { Clock } from '../util/clock.ts';
import type { HostPolicy } from '../util/net.ts';

/** LinOTP's user-info keys (spec 7); resolvers may add more (e.g. `dn`, `gender`). Never a password. */
export interface UserInfo {
  username: string;
  userid: string;
  givenname?: string;
  surname?: string;
  mobile?: string;
  phone?: string;
  email?: string;
  description?: string;
  [k: string]: string | undefined;
}

/** A user as the rest of otpd sees it: found in one resolver, in one realm. */
export interface DirectoryUser {
  login: string;
  userId: string;
  /** Resolver name. */
  resolver: string;
  /** LinOTP resolver class spec, e.g. `useridresolver.LDAPIdResolver.IdResolver.<name>`. */
  resolverClass: string;
  realm: string;
  info: UserInfo;
}

/** A user as one store returns it (before the directory adds resolver and realm). */
export interface StoreUser {
  login: string;
  userId: string;
  info: UserInfo;
  /** LDAP: the entry's DN, used to bind for the password check. Cached with the user. */
  dn?: string;
}

/** Search for `/admin/userlist`: LinOTP field → pattern where `*` is a wildcard. */
export type UserSearch = Partial<Record<'username' | 'userid' | 'givenname' | 'surname' | 'email' | 'mobile' | 'phone' | 'description', string>>;

/** Result of `/system/testResolver`. */
export interface StoreHealth {
  ok: boolean;
  /** Human readable steps done: connect, bind, count. */
  steps: string[];
  /** Users found by the list filter (capped at the size limit). */
  userCount?: number;
  /** Attributes of one sample user (user-info keys), when any user exists. */
  sample?: UserInfo;
  error?: string;
}

/** One configured user store. Implementations hold no cache: the directory caches. */
export interface UserStore {
  /** By login name; null when there is no such user. Throws UserStoreUnavailableError. */
  lookup(login: string): Promise<StoreUser | null>;
  /** By the store's user id; null when there is no such user. Throws UserStoreUnavailableError. */
  byId(userId: string): Promise<StoreUser | null>;
  /** False for a wrong, empty or NUL-containing password. Throws UserStoreUnavailableError. */
  checkPassword(user: StoreUser, password: string): Promise<boolean>;
  /** Users matching every pattern in `search`, at most `limit`. */
  search(search: UserSearch, limit: number): Promise<StoreUser[]>;
  /** Connect, bind, count users, sample one user. Never throws. */
  test(): Promise<StoreHealth>;
  /** Releases connections (pools). */
  close(): Promise<void>;
}

export interface StoreDeps {
  logger: Logger;
  clock: Clock;
  /**
   * Which hosts the store may connect to, asked before every connection (name and
   * resolved addresses). The directory passes the UserStore* host settings.
   * @default a policy refusing only the always-refused addresses (metadata, link-local, …)
   */
  hosts?: HostPolicy;
}

/** A network host a resolver configuration connects to, with the config key it came from. */
export interface ConfiguredHost {
  key: string;
  host: string;
}

/** A resolver configuration as stored and shown: string values (LinOTP's form), keys in the schema's spelling. */
export type StoredResolverConfig = Record<string, string>;

/**
 * A resolver type, registered by LinOTP's type name (`ldapresolver`, `sqlresolver`,
 * `passwdresolver`); made by `defineResolverType` (users/config.ts) from the type's schema.
 */
export interface ResolverType {
  readonly type: string;
  /** LinOTP class prefix, e.g. `useridresolver.LDAPIdResolver.IdResolver`. */
  readonly classPrefix: string;
  /** TypeBox schema of the configuration: types, formats, defaults, descriptions; secrets marked `secret: true`. */
  readonly schema: TObject;
  /** Keys holding secrets (derived from the schema): stored encrypted, shown as `__CENSORED__`, redacted in logs. */
  readonly secretKeys: readonly string[];
  /**
   * Checks request parameters (all strings, as LinOTP sends them) and returns the config
   * to store: known keys only, in the schema's spelling. Throws an OtpdError naming the bad
   * key (905 for a missing one).
   */
  normalize(config: Record<string, string>): StoredResolverConfig;
  /** Builds a store; the config is checked against the schema first (it throws like `normalize`). */
  create(name: string, config: StoredResolverConfig, deps: StoreDeps): UserStore;
  /** Network hosts a configuration connects to (none for files). Checked against the host policy before saving or testing. */
  hosts?(config: StoredResolverConfig): ConfiguredHost[];
}
