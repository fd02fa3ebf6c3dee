/**
 * The client condition of a policy (spec 3.3): IP addresses and networks (IPv4,
 * IPv6, host bits refused) and `*`, each negatable with `!` or `-`. Match classes:
 * 2 a network holds the client, 1 `*`; a client that is not an IP address matches
 * only a condition of bare `*` (fail closed).
 */
import { EMPTY_MEANS_ALL_SCOPES, type Scope } from './catalogue.ts';
import { CidrError, type Cidr, cidrContains, parseCidr } from '../util/net.ts';
import { EXACT, NO, NOT_CHECKED, type PreparedSubject, WILDCARD, splitList } from './match-subject.ts';
import { PolicyDefinitionError } from './parse.ts';

export interface ClientEntry {
  raw: string;
  negative: boolean;
  /** undefined = `*` */
  net?: Cidr;
}

export interface ClientCondition {
  raw: string;
  none: boolean;
  /** only `*` entries, no exclusions: matches every request, even with an unparsable client */
  all: boolean;
  entries: ClientEntry[];
}

/** One rule for host bits (util/net.ts): `10.1.2.3/8` is refused, naming the network probably meant. */
function clientNet(entry: string, body: string, negative: boolean): Cidr {
  try {
    return parseCidr(body);
  } catch (e) {
    if (!(e instanceof CidrError)) throw e;
    if (e.suggestion !== undefined) {
      throw new PolicyDefinitionError('client', `'${entry}' has host bits set; did you mean ${negative ? entry[0] : ''}${e.suggestion}?`);
    }
    throw new PolicyDefinitionError('client', `'${entry}' is not an IP address or network (a.b.c.d, a.b.c.d/n, IPv6, IPv6/n)`);
  }
}

/**
 * The client field with every network's host bits cleared (`10.1.2.3/8` →
 * `10.0.0.0/8`), or undefined when no entry has host bits set. Only for
 * policies stored before host bits were refused: they keep matching what they
 * matched then, and the service logs that they must be saved again.
 */
export function clientWithoutHostBits(text: string): string | undefined {
  let changed = false;
  const entries = splitList(text).map((entry) => {
    const negative = entry.startsWith('!') || entry.startsWith('-');
    const body = negative ? entry.slice(1).trim() : entry;
    if (body === '*') return entry;
    try {
      parseCidr(body);
      return entry;
    } catch (e) {
      if (!(e instanceof CidrError) || e.suggestion === undefined) return entry;
      changed = true;
      return `${negative ? entry[0] : ''}${e.suggestion}`;
    }
  });
  return changed ? entries.join(', ') : undefined;
}

export function compileClient(text: string, scope: Scope): ClientCondition {
  const raw = text.trim();
  const entries: ClientEntry[] = [];
  for (const entry of splitList(raw)) {
    const negative = entry.startsWith('!') || entry.startsWith('-');
    const body = negative ? entry.slice(1).trim() : entry;
    if (body === '*') {
      entries.push({ raw: entry, negative });
      continue;
    }
    entries.push({ raw: entry, negative, net: clientNet(entry, body, negative) });
  }
  if (entries.length === 0) {
    return EMPTY_MEANS_ALL_SCOPES.has(scope)
      ? { raw, none: false, all: true, entries: [{ raw: '*', negative: false }] }
      : { raw, none: true, all: false, entries: [] };
  }
  if (entries.every((e) => e.negative)) {
    throw new PolicyDefinitionError('client', `client '${raw}' only excludes addresses and would match none; add * ('*, ${raw}')`);
  }
  if (entries.some((e) => e.negative && !e.net)) throw new PolicyDefinitionError('client', "client '!*' excludes every address");
  const all = entries.every((e) => !e.net && !e.negative);
  return { raw, none: false, all, entries };
}

export function matchClient(c: ClientCondition, s: PreparedSubject): number {
  if (s.client === undefined) return NOT_CHECKED;
  if (c.none) return NO;
  if (c.all) return WILDCARD;
  const ip = s.client;
  // an unparsable client cannot be checked against exclusions: fail closed
  if (ip === null) return NO;
  let best = NO;
  for (const e of c.entries) {
    const hit = e.net ? cidrContains(e.net, ip) : true;
    if (!hit) continue;
    if (e.negative) return NO;
    const cls = e.net ? EXACT : WILDCARD;
    if (cls > best) best = cls;
  }
  return best;
}
