/**
 * What validation and the token service need from the user-store and policy
 * layers (implemented by users/directory.ts and policy/service.ts). Until a
 * layer is configured, validation uses the defaults below.
 */
import type { DirectoryUser } from '../users/types.ts';
import type { PolicySubject, Scope } from '../policy/service.ts';

export type { DirectoryUser, UserInfo } from '../users/types.ts';
export type { PolicySubject, Scope } from '../policy/service.ts';

export interface UserPort {
  splitUser(user: string, realm?: string): { login: string; realm: string };
  findUser(login: string, realm: string): Promise<DirectoryUser | null>;
  findById(resolver: string, userId: string, realm: string): Promise<DirectoryUser | null>;
  checkPassword(user: DirectoryUser, password: string): Promise<boolean>;
  defaultRealm(): string | undefined;
  realmExists(realm: string): boolean;
  realmsOfResolver(resolver: string): string[];
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
