import '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Errors } from '../errors.ts';
import { randomToken } from '../crypto/random.ts';
import type { Services } from '../services.ts';

export interface AdminIdentity {
  name: string;
  via: 'session' | 'apikey';
}

export const SESSION_COOKIE = 'access_token_cookie';
export const CSRF_COOKIE = 'csrf_access_token';

const notAuthenticated = () => Errors.notAuthenticated();

/**
 * Admin authentication as LinOTP 3 does it: the session cookie from /admin/login
 * plus the `X-CSRF-TOKEN` header (or `csrf_token` form field) matching the
 * `csrf_access_token` cookie; or, for scripts, `Authorization: Bearer <API key>`.
 */
export async function authenticateAdmin(services: Services, request: FastifyRequest): Promise<AdminIdentity> {
  const authz = request.headers.authorization;
  if (authz?.startsWith('Bearer ')) {
    const admin = await services.admins.verifyApiKey(authz.slice(7).trim());
    if (!admin) throw notAuthenticated();
    return { name: admin, via: 'apikey' };
  }
  const cookie = request.cookies?.[SESSION_COOKIE];
  if (!cookie) throw notAuthenticated();
  const session = await services.admins.findSession(cookie);
  if (!session) throw notAuthenticated();
  const body = (request.body ?? {}) as Record<string, unknown>;
  const sent = (request.headers['x-csrf-token'] as string | undefined) ?? (typeof body.csrf_token === 'string' ? body.csrf_token : undefined);
  if (!sent || sent !== session.csrf) throw Errors.csrfMismatch();
  return { name: session.admin, via: 'session' };
}

/** Sets the session and CSRF cookies after a successful /admin/login. */
export function setSessionCookies(reply: FastifyReply, cookie: string, csrf: string, maxAgeSeconds: number, secure: boolean): void {
  reply.setCookie(SESSION_COOKIE, cookie, { httpOnly: true, path: '/', maxAge: maxAgeSeconds, sameSite: 'strict', secure });
  reply.setCookie(CSRF_COOKIE, csrf, { httpOnly: false, path: '/', maxAge: maxAgeSeconds, sameSite: 'strict', secure });
}

export function clearSessionCookies(reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/' });
  reply.clearCookie(CSRF_COOKIE, { path: '/' });
}

export const newSessionSecrets = () => ({ cookie: randomToken(32), csrf: randomToken(18) });
