import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import { registerMultipart } from './multipart.ts';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type ConnectionError, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Errors, OtpdError } from '../errors.ts';
import type { Services } from '../services.ts';
import { errorEnvelope, serialise, toOtpdError } from './envelope.ts';
import { authenticateAdmin } from './auth.ts';
import type { RouteAuthConfig } from './route.ts';
import { instrumentHttp } from './metrics.ts';
import { authenticateUser } from './user-auth.ts';
import { registerAllRoutes } from './routes.ts';
import { registerLoadShedding } from './load-shedding.ts';
import { registerManage } from '../web/manage/pages.ts';
import { registerSelfService } from '../web/selfservice/pages.ts';
import { registerDemoPages } from '../web/demo/messages.ts';
import { pathOf, serializers } from '../util/logger.ts';
import { requestContext } from '../util/request-context.ts';

/**
 * What Node's HTTP parser refuses before Fastify sees a request (a URL and headers over 16 KiB,
 * a broken request line, header or chunked body): LinOTP's envelope like every other error
 * (Fastify's default answers its own JSON), no body for a HEAD request, and a log line without
 * the raw packet (which may hold a query string's PIN or OTP).
 */
function clientError(services: Services): (err: ConnectionError, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const answer = err.code === 'HPE_HEADER_OVERFLOW' ? Errors.requestHeadersTooLarge()
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? null : Errors.malformedHttp();
    services.logger.debug({ code: err.code }, 'malformed HTTP request refused');
    if (socket.writable) {
      if (answer === null) socket.write('HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      else {
        const head = Buffer.isBuffer(err.rawPacket) && err.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
        const body = head ? '' : serialise(errorEnvelope(answer, 1));
        socket.write(`HTTP/1.1 ${answer.httpStatus} ${STATUS_CODES[answer.httpStatus]}\r\nContent-Type: application/json; charset=utf-8\r\n`
          + `Content-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`);
      }
    }
    socket.destroy();
  };
}

export interface BuildAppOptions {
  /**
   * Told of every route Fastify registers (also HEAD routes Fastify adds for GET ones, and any
   * route registered outside the route table), so the route-walk test can classify each.
   * @default none
   */
  onRoute?: (route: { url: string; methods: string[] }) => void;
  /** Serve HTTPS with this PEM certificate (chain) and key. @default plain HTTP */
  https?: { cert: Buffer; key: Buffer };
}

/**
 * The Fastify app: form and JSON bodies, cookies, LinOTP envelopes for every
 * error (bad JSON, oversized body, unknown path), never a stack trace.
 * It logs on the services' logger: an "incoming request" and a "request completed" line
 * (status, `responseTime` in ms) per request, and every line logged while the request is
 * served carries its `reqId`, which also goes to the audit rows it writes and to the client
 * as `X-Request-Id`.
 */
export async function buildApp(services: Services, opts: BuildAppOptions = {}): Promise<FastifyInstance> {
  const trusted = (services.settings.trustedProxies ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const app = Fastify({
    // with otpd's serializers whatever logger the services were given: a request is logged by
    // its path (a query string may carry a PIN or an OTP), never its headers or body
    loggerInstance: services.logger.child({}, { serializers }) as FastifyBaseLogger,
    // unique across restarts and nodes (Fastify's default counts from 1 in every process)
    genReqId: () => randomUUID(),
    bodyLimit: 256 * 1024,
    trustProxy: trusted.length ? trusted : false,
    clientErrorHandler: clientError(services),
    ...(opts.https ? { https: opts.https } : {}),
  }) as unknown as FastifyInstance;
  const { onRoute } = opts;
  if (onRoute) app.addHook('onRoute', (route) => onRoute({ url: route.url, methods: [route.method].flat().map(String) }));
  // the rest of the request runs in its context (Fastify carries it across body parsing)
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('X-Request-Id', request.id);
    requestContext.run({ reqId: request.id }, done);
  });
  instrumentHttp(app, services.metrics);
  // after the request id (a shed answer carries one too), before any body is read
  registerLoadShedding(app, { maxInFlight: services.settings.maxInFlight ?? 64, maxQueueMs: services.settings.maxQueueMs ?? 1000 });
  await app.register(formbody);
  registerMultipart(app);
  await app.register(cookie);
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Cache-Control', 'no-store');
    return payload;
  });
  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    // a body Fastify refused (bad JSON, foreign type, too large) on an admin route: credentials
    // first, as for every other admin call, so a refused caller learns nothing from its body
    const auth = request.routeOptions.config as Partial<RouteAuthConfig> | undefined;
    if (status < 500 && (auth?.adminAuth || auth?.userAuth)) {
      try {
        await (auth.userAuth ? authenticateUser(services, request) : authenticateAdmin(services, request));
      } catch (e) {
        if (!(e instanceof OtpdError)) request.log.error({ err: e, path: pathOf(request.url) }, 'authentication failed');
        const refusal = toOtpdError(e);
        return reply.code(refusal.httpStatus).type('application/json').send(serialise(errorEnvelope(refusal, 1)));
      }
    }
    const answer =
      status >= 500 ? Errors.internal()
        : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? Errors.unsupportedContentType()
          : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? Errors.requestBodyTooLarge()
            : Errors.invalidRequest({ why: err.message });
    if (status >= 500) request.log.error({ err, path: pathOf(request.url) }, 'unhandled error');
    const id = request.url.startsWith('/validate/') ? 0 : 1;
    return reply
      .code(status >= 500 ? 500 : answer.httpStatus)
      .type('application/json')
      .send(serialise(errorEnvelope(answer, id)));
  });
  app.setNotFoundHandler((request, reply) => {
    const answer = Errors.noSuchEndpoint({ path: pathOf(request.url) });
    reply.code(answer.httpStatus).type('application/json').send(serialise(errorEnvelope(answer, 1)));
  });
  await registerAllRoutes({ app, services });
  await registerManage(app, services);
  await registerSelfService(app, services);
  await registerDemoPages(app, services);
  return app;
}
