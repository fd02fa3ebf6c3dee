import { ldapResolverType } from './ldap.ts';
import { passwdResolverType } from './passwd.ts';
import { sqlResolverType } from './sql.ts';
import type { ResolverType } from './types.ts';

/** Resolver types by LinOTP type name (`ldapresolver`, `sqlresolver`, `passwdresolver`). */
const registry = new Map<string, ResolverType>();

export function registerResolverType(type: ResolverType): void {
  registry.set(type.type, type);
}

export function resolverType(name: string): ResolverType | undefined {
  return registry.get(name.toLowerCase());
}

export function resolverTypes(): ResolverType[] {
  return [...registry.values()];
}

/** The resolver type whose LinOTP class prefix starts `spec` (`useridresolver.LDAPIdResolver.IdResolver.<name>`). */
export function resolverTypeOfSpec(spec: string): ResolverType | undefined {
  return [...registry.values()].find((t) => spec.startsWith(`${t.classPrefix}.`));
}

for (const t of [ldapResolverType, sqlResolverType, passwdResolverType]) registerResolverType(t);
