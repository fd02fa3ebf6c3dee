/**
 * What validation and the token service need from the user-store and policy
 * layers (implemented by users/directory.ts and policy/service.ts). Until a
 * layer is configured, validation uses the defaults below.
 */
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

export interface DirectoryUser {
  login: string;
  userId: string;
  resolver: string;
  resolverClass: string;
  realm: string;
  info: UserInfo;
}

export interface UserPort {
  splitUser(user: string, realm?: string): { login: string; realm: string };
  findUser(login: string, realm: string): Promise<DirectoryUser | null>;
  findById(resolver: string, userId: string, realm: string): Promise<DirectoryUser | null>;
  checkPassword(user: DirectoryUser, password: string): Promise<boolean>;
  defaultRealm(): string | undefined;
  realmExists(realm: string): boolean;
  realmsOfResolver(resolver: string): string[];
}

export type Scope = 'authentication' | 'enrollment' | 'authorization' | 'selfservice' | 'admin' | 'system' | 'audit' | 'notification';

export interface PolicySubject {
  login: string;
  realm: string;
  resolver?: string;
  client?: string;
  userInfo?: Record<string, string | undefined>;
}

export interface PolicyPort {
  value(scope: Scope, action: string, subject: PolicySubject, opts?: { ignoreTime?: boolean }): string | number | boolean | undefined;
  has(scope: Scope, action: string, subject: PolicySubject, opts?: { ignoreTime?: boolean }): boolean;
  anyPolicy(scope: Scope, action?: string): boolean;
  adminAllowed(admin: string, scope: 'admin' | 'system' | 'audit', action: string): { allowed: boolean; realms: '*' | string[] };
}

/** No policies configured: every lookup answers "no policy" and admins may do everything. */
export const noPolicies: PolicyPort = {
  value: () => undefined,
  has: () => false,
  anyPolicy: () => false,
  adminAllowed: () => ({ allowed: true, realms: '*' }),
};
