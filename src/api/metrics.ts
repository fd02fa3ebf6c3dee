import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Metrics } from '../util/metrics.ts';
import { defineRoutes, raw, type Api } from './route.ts';

/**
 * `/metrics`: Prometheus text format from this instance's prom-client registry
 * (src/util/metrics.ts; the series are listed in docs/metrics.md); admin authentication (an
 * API key for the scraper), system scope `read`.
 */
export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/metrics',
      methods: ['GET'],
      auth: 'admin',
      audit: false,
      policy: { scope: 'system', action: 'read' },
      handler: async ({ services }) => {
        const { body, contentType } = await services.metrics.text();
        return raw(body, contentType);
      },
    },
  ]);
}

/**
 * LinOTP's envelope starts `{ "jsonrpc": …, "result": { "status": true|false` (api/envelope.ts,
 * fixed key order and indent): its status is read from the head of the answer, whichever
 * path wrote it (a route, the error handler, the not-found handler).
 */
const ENVELOPE_STATUS = /^\{\s*"jsonrpc": "[^"]*",\s*"result": \{\s*"status": (true|false)/;
const envelopes = new WeakMap<FastifyReply, boolean>();

/**
 * Counts and times every answered request by its route pattern (never the URL, which may carry
 * a user name or an OTP in its query), method, HTTP status and envelope status.
 */
export function instrumentHttp(app: FastifyInstance, metrics: Metrics): void {
  metrics.start();
  app.addHook('onSend', async (_request, reply, payload) => {
    if (typeof payload === 'string') {
      const status = ENVELOPE_STATUS.exec(payload.slice(0, 200))?.[1];
      if (status) envelopes.set(reply, status === 'true');
    }
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequest({
      route: request.routeOptions.url, method: request.method, code: reply.statusCode,
      envelope: envelopes.get(reply), seconds: reply.elapsedTime / 1000,
    });
  });
}
