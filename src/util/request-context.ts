import { AsyncLocalStorage } from 'node:async_hooks';

/** What otpd knows of the HTTP request being served, wherever in its call tree a line is logged. */
export interface RequestContext {
  /** Fastify's request id (`request.id`): in every log line of the request and in its audit rows. */
  reqId: string;
}

/**
 * The request being served, carried across awaits (api/app.ts enters it for every request).
 * The logger adds its `reqId` to lines logged by services that never see the request, and the
 * audit writer to rows they write.
 */
export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The id of the request being served, or undefined outside one (timers, RADIUS, CLI). */
export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.reqId;
}
