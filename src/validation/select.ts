import { tokenType } from '../tokens/registry.ts';
import { usageRefusal } from '../tokens/usage.ts';
import type { Token } from '../tokens/types.ts';
import { tokenRefusal } from './policies.ts';
import type { DirectoryUser, PolicyPort, PolicySubject } from './ports.ts';
import type { Reason } from './reasons.ts';

/** A token is the user's own: assigned to this directory user (resolver + user id). */
export function ownedBy(t: Token, user: DirectoryUser): boolean {
  return t.userId !== '' && t.userId === user.userId && t.resolver === user.resolver;
}

/** The tokens of a request, screened before any secret is checked. */
export interface Screened {
  /** May be checked: the right realm, a known type, active, allowed, below their fail limit. */
  candidates: Token[];
  /** At their fail counter limit: they cost no HMAC and no write (B.2 #15). */
  locked: Token[];
  /** Why the last token that is neither was left out ('no token found' when none was). */
  skipped: { reason: Reason; detail: string };
}

/** Which tokens the request may check at `nowMs` (the last reason a token was left out wins). */
export function screenTokens(all: Token[], user: DirectoryUser | null, policies: PolicyPort, subject: PolicySubject, nowMs: number): Screened {
  let skipped: Screened['skipped'] = { reason: 'noTokenFound', detail: 'no token found' };
  const candidates: Token[] = [];
  const locked: Token[] = [];
  for (const t of all) {
    if (user && t.realms.length > 0 && !t.realms.includes(user.realm)) { skipped = { reason: 'realmMismatch', detail: 'Realm mismatch for token and user' }; continue; }
    if (!tokenType(t.type)) { skipped = { reason: 'unknownTokenType', detail: `unknown token type ${t.type}` }; continue; }
    if (!t.active) { skipped = { reason: 'tokenDisabled', detail: 'Token inactive' }; continue; }
    const refused = tokenRefusal(policies, t, subject) ?? usageRefusal(t, nowMs);
    if (refused) { skipped = refused; continue; }
    if (t.failCount >= t.maxFail) { locked.push(t); continue; }
    candidates.push(t);
  }
  return { candidates, locked, skipped };
}
