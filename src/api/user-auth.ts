import '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { Errors } from '../errors.ts';
import type { Services } from '../services.ts';
import type { SessionUser } from '../userservice/sessions.ts';

/** The user of a self-service session. */
export interface UserIdentity extends SessionUser {
  /** The session cookie's value (logout ends it). */
  session: string;
}

export const USER_SESSION_COOKIE = 'user_selfservice';

/** The raw `session` parameter (query or form), before the route's parameters are parsed. */
function sessionParam(request: FastifyRequest): string | undefined {
  for (const source of [request.body, request.query]) {
    const v = source && typeof source === 'object' ? (source as Record<string, unknown>).session : undefined;
    if (typeof v === 'string') return v;
  }
  return undefined;
}

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * LinOTP's self-service check (spec 1.6): the `user_selfservice` cookie of a live session and
 * a `session` parameter equal to it (the CSRF rule: another site can send the cookie, not read
 * it). Admin sessions and API keys are no user session.
 */
export async function authenticateUser(services: Services, request: FastifyRequest): Promise<UserIdentity> {
  const cookie = request.cookies?.[USER_SESSION_COOKIE];
  const session = sessionParam(request);
  if (!cookie || session === undefined || !same(cookie, session)) throw Errors.noUserSession();
  const user = await services.userSessions.find(cookie);
  if (!user) throw Errors.noUserSession();
  return { ...user, session: cookie };
}

/**
 * The portal's check (`/selfservice/` pages): the live `user_selfservice` session of the
 * cookie alone, or null. The page then checks its own CSRF token ({@link userCsrfToken}) on
 * every form; the cookie value itself never goes into a page.
 */
export async function userSessionOf(services: Services, request: FastifyRequest): Promise<UserIdentity | null> {
  const cookie = request.cookies?.[USER_SESSION_COOKIE];
  if (!cookie) return null;
  const user = await services.userSessions.find(cookie);
  return user ? { ...user, session: cookie } : null;
}

/** The CSRF token of a portal session: derived from the cookie with the key ring, so a page shows it and not the cookie. */
export function userCsrfToken(services: Services, user: UserIdentity): string {
  return services.keyring.hash('user-csrf', user.session);
}

/** True when a posted portal form carries its session's CSRF token. */
export function userCsrfMatches(services: Services, user: UserIdentity, body: unknown): boolean {
  const sent = (body as Record<string, unknown> | undefined)?.csrf_token;
  return typeof sent === 'string' && sent.length > 0 && same(sent, userCsrfToken(services, user));
}

export function setUserSessionCookie(reply: FastifyReply, cookie: string, maxAgeSeconds: number, secure: boolean): void {
  reply.setCookie(USER_SESSION_COOKIE, cookie, { httpOnly: true, path: '/', maxAge: maxAgeSeconds, sameSite: 'strict', secure });
}

export function clearUserSessionCookie(reply: FastifyReply): void {
  reply.clearCookie(USER_SESSION_COOKIE, { path: '/' });
}
