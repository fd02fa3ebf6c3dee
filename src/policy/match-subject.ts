/**
 * The request side of policy matching (spec 3.3): the subject a policy is matched
 * against, prepared once per request, and the match classes every field condition
 * answers with (higher = more specific, NO = the condition fails, NOT_CHECKED = the
 * request carries no value for the field, so it is not checked, as LinOTP does when
 * a filter is not applied). Also the comma list each condition field is written as.
 */
import { type IpAddress, parseIp } from '../util/net.ts';

export const NO = -1;
export const NOT_CHECKED = 0;
export const WILDCARD = 1;
export const PATTERN = 2;
export const EXACT_USER = 3;
export const EXACT = 2;

/** The request a policy is matched against. Fields left undefined are not checked. */
export interface MatchSubject {
  login?: string;
  realm?: string;
  resolver?: string;
  client?: string;
  userInfo?: Record<string, string | undefined>;
}

/** A subject with its realm lower-cased and client parsed (once per request). */
export interface PreparedSubject {
  login?: string;
  realm?: string;
  resolver?: string;
  userInfo?: Record<string, string | undefined>;
  clientText?: string;
  /** undefined: no client given; null: given but not an IP address */
  client?: IpAddress | null;
}

/** Parsed client addresses; requests come from a limited set of NAS/portal addresses. */
const clientCache = new Map<string, IpAddress | null>();

function parseClient(text: string): IpAddress | null {
  let ip = clientCache.get(text);
  if (ip === undefined) {
    ip = parseIp(text) ?? null;
    if (clientCache.size >= 4096) clientCache.clear();
    clientCache.set(text, ip);
  }
  return ip;
}

export function prepareSubject(s: MatchSubject): PreparedSubject {
  return {
    login: s.login,
    realm: s.realm?.toLowerCase(),
    resolver: s.resolver,
    userInfo: s.userInfo,
    clientText: s.client,
    client: s.client === undefined || s.client === '' ? undefined : parseClient(s.client),
  };
}

/** A condition field's entries: comma-separated, trimmed, empty ones dropped. */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
