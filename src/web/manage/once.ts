import '@fastify/cookie';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OtpdError } from '../../errors.ts';
import type { Services } from '../../services.ts';
import type { Done, ManageKit, View } from './kit.ts';
import type { PageCall, PageSession } from './session.ts';

/**
 * A secret shown once after the form that made it (a RADIUS client's shared secret, a new API
 * key), across the redirect after the POST: the form's answer sets it, sealed (AES-256-GCM under
 * a key derived from the key file, bound to the admin's session and to what it is for), in a
 * short-lived HttpOnly cookie; the page it redirects to opens it and clears it at once, so a
 * reload, the back button or another session finds nothing. Any node of a cluster can open it
 * (they share the key file), and it is never in the database, a log or a URL.
 */

const COOKIE = 'manage_once';
const MAX_AGE_SECONDS = 120;

function keyOf(services: Services): Buffer {
  return services.keyring.deriveKey('manage-once');
}

/** What the seal is bound to: the session (by a hash of its CSRF token) and the purpose. */
const boundTo = (session: PageSession, purpose: string) => Buffer.from(`${createHash('sha256').update(session.csrf).digest('hex')}\n${purpose}`);

/** Seals `secret` for the next page of this session that asks for `purpose` (e.g. `radius:vpn`). */
export function handOver(services: Services, reply: FastifyReply, session: PageSession, purpose: string, secret: string, secure: boolean): void {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(services), iv);
  cipher.setAAD(boundTo(session, purpose));
  const sealed = Buffer.concat([iv, cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64url');
  reply.setCookie(COOKIE, sealed, { path: '/manage/', httpOnly: true, sameSite: 'strict', maxAge: MAX_AGE_SECONDS, secure });
}

/** The handed-over secret for `purpose`, or undefined (none, another session's, another purpose's); the cookie is cleared either way. */
export function takeOver(services: Services, request: FastifyRequest, reply: FastifyReply, session: PageSession, purpose: string): string | undefined {
  const sealed = request.cookies?.[COOKIE];
  if (sealed === undefined) return undefined;
  reply.clearCookie(COOKIE, { path: '/manage/' });
  try {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 12 + 16) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', keyOf(services), raw.subarray(0, 12));
    decipher.setAAD(boundTo(session, purpose));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

/** `kit.form` whose `act` may hand a secret over to the page it redirects to. */
export function formHandingOver(
  kit: ManageKit,
  act: (call: PageCall, body: Record<string, string>, request: FastifyRequest, hand: (purpose: string, secret: string) => void) => Promise<Done | View>,
  onError: (call: PageCall, body: Record<string, string>, error: OtpdError, request: FastifyRequest) => Promise<View>,
): Handler {
  return (request, reply) => kit.form(
    (call, body) => act(call, body, request, (purpose, secret) => handOver(kit.services, reply, call.session, purpose, secret, request.protocol === 'https')),
    onError,
  )(request, reply);
}

/** `kit.page` that takes over the secret handed to it (undefined after the first view); never cached. */
export function pageTakingOver(kit: ManageKit, purposeOf: (request: FastifyRequest) => string, render: (call: PageCall, request: FastifyRequest, secret: string | undefined) => Promise<View>): Handler {
  return (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    return kit.page((call) => render(call, request, takeOver(kit.services, request, reply, call.session, purposeOf(request))))(request, reply);
  };
}
