import '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AdminIdentity } from '../../api/auth.ts';
import { SESSION_COOKIE } from '../../api/auth.ts';
import type { Services } from '../../services.ts';

/**
 * The management pages use the admin session of `/admin/login` (the same cookie and CSRF
 * token as the JSON API, so one login serves both). Pages never accept API keys: a browser
 * has a session. GET pages need the session only; every POST form also carries the session's
 * CSRF token in its `csrf_token` field (SameSite=Strict cookies are the second wall).
 */
export interface PageSession {
  admin: AdminIdentity;
  csrf: string;
}

/** What a page's code gets: the session, and the API routes to call as its admin. */
export interface PageCall {
  /** Calls a declared API route as the logged-in admin: its value, or the refusal thrown. */
  api(path: string, params?: Record<string, string | string[]>): Promise<unknown>;
  /** Like `api`, with the envelope's `detail` too (e.g. `/admin/init`'s once-shown otpauth URL). */
  answer(path: string, params?: Record<string, string | string[]>): Promise<{ value: unknown; detail?: Record<string, unknown> }>;
  session: PageSession;
}

export async function pageSession(services: Services, request: FastifyRequest): Promise<PageSession | null> {
  const cookie = request.cookies?.[SESSION_COOKIE];
  if (!cookie) return null;
  const session = await services.admins.findSession(cookie);
  return session ? { admin: { name: session.admin, via: 'session' }, csrf: session.csrf } : null;
}

/** True when a posted form carries the session's CSRF token. */
export function csrfMatches(session: PageSession, body: unknown): boolean {
  const sent = (body as Record<string, unknown> | undefined)?.csrf_token;
  return typeof sent === 'string' && sent.length > 0 && sent === session.csrf;
}

const FLASH_COOKIE = 'manage_flash';

/** A one-line result for the next page ("Token LSEM12AB disabled"), never an alert dialog. */
export function setFlash(reply: FastifyReply, message: string): void {
  reply.setCookie(FLASH_COOKIE, message.slice(0, 300), { path: '/manage/', httpOnly: true, sameSite: 'strict', maxAge: 60 });
}

/** The pending flash message, cleared once read. */
export function takeFlash(request: FastifyRequest, reply: FastifyReply): string | undefined {
  const message = request.cookies?.[FLASH_COOKIE];
  if (message === undefined) return undefined;
  reply.clearCookie(FLASH_COOKIE, { path: '/manage/' });
  return message;
}
