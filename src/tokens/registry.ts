import { Errors } from '../errors.ts';
import type { TokenType } from './types.ts';

const registry = new Map<string, TokenType>();

/** Token types register themselves by LinOTP's type name. */
export function registerTokenType(t: TokenType): void {
  registry.set(t.type, t);
}

/** Other names clients use for a type: HOTP is LinOTP's `hmac`. */
const ALIASES: Record<string, string> = { hotp: 'hmac' };

/** The canonical type name (`HOTP` → `hmac`), lower case. */
export function canonicalType(type: string): string {
  const t = type.toLowerCase();
  // own keys only: `constructor` or `__proto__` from a request is no alias
  return Object.hasOwn(ALIASES, t) ? ALIASES[t]! : t;
}

export function tokenType(type: string): TokenType | undefined {
  return registry.get(canonicalType(type));
}

export function requireTokenType(type: string): TokenType {
  const t = tokenType(type);
  if (!t) throw Errors.unknownTokenType({ type: JSON.stringify(type) });
  return t;
}

export function tokenTypes(): string[] {
  return [...registry.keys()];
}
