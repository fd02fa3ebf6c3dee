import { ErrorCodes, OtpdError } from '../errors.ts';
import type { TokenType } from './types.ts';

const registry = new Map<string, TokenType>();

/** Token types register themselves by LinOTP's type name. */
export function registerTokenType(t: TokenType): void {
  registry.set(t.type, t);
}

export function tokenType(type: string): TokenType | undefined {
  return registry.get(type.toLowerCase());
}

export function requireTokenType(type: string): TokenType {
  const t = tokenType(type);
  if (!t) throw new OtpdError(ErrorCodes.unknownTokenType, `type ${JSON.stringify(type)} not supported`);
  return t;
}

export function tokenTypes(): string[] {
  return [...registry.keys()];
}
