import { isatty } from 'node:tty';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';
import { requestContext } from './request-context.ts';

/**
 * Log redaction of names that mean a secret wherever they appear, at the top of a log object and
 * one level down (`{ config: { password } }`). services.ts adds the config fields the provider
 * and resolver schemas mark `secret: true`. Fastify's request logging logs no headers or body
 * at all (see `serializers.req`); the header paths guard a caller that logs them.
 */
export const BASE_REDACT = [
  'pass', 'password', 'pin', 'otp', 'otpkey', 'seed', 'secret', 'apiKey', 'api_key', 'authToken', 'auth_token', 'accessToken',
  'clientSecret', 'client_secret', 'credentials', 'authorization', 'cookie',
  '*.pass', '*.password', '*.pin', '*.otp', '*.otpkey', '*.seed', '*.secret', '*.apiKey', '*.api_key', '*.authToken', '*.auth_token',
  '*.accessToken', '*.clientSecret', '*.client_secret', '*.credentials',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'req.headers["x-api-key"]', 'req.body', 'req.query',
  'res.headers["set-cookie"]', '*.headers.authorization', '*.headers.cookie',
];

/** The path of a request URL: a query string may hold a PIN or an OTP and never goes to the log. */
export const pathOf = (url: string): string => url.split('?')[0];

/**
 * How a request, a reply and an error look in a log line. Fastify's own `req` serializer logs
 * the URL with its query string (a PIN or an OTP in `/validate/check?pass=…`): this one logs the
 * path, never headers or the body.
 */
export const serializers = {
  err: pino.stdSerializers.err,
  req: (req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) => ({
    method: req.method,
    path: pathOf(req.url ?? ''),
    remoteAddress: req.ip ?? req.socket?.remoteAddress,
  }),
  res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }),
};

/** `pretty`: human-readable lines; `json`: one JSON object a line; `auto`: pretty on a terminal, else JSON. */
export type LogFormat = 'json' | 'pretty' | 'auto';

/**
 * Lines logged while a request is served carry its id as `reqId`, also those of services that
 * never see the request. Fastify's request logger already binds `reqId`: not twice.
 */
function withRequestId(_obj: object, _level: number, logger: Logger): object {
  const ctx = requestContext.getStore();
  if (!ctx || 'reqId' in logger.bindings()) return {};
  return { reqId: ctx.reqId };
}

/** otpd's pino options: redaction, serializers, the request id on lines logged during a request. */
export function loggerOptions(level: string, redact: readonly string[] = BASE_REDACT): LoggerOptions {
  return { level, redact: { paths: [...redact], censor: '***' }, serializers, mixin: withRequestId };
}

/**
 * A logger shared by Fastify and every service (services.ts's createLogger passes the full
 * redaction list). CLI commands log to stderr (fd 2) so their stdout stays clean.
 * @param format @default 'auto' (pretty when `fd` is a terminal)
 * @param redact @default BASE_REDACT
 */
export function createLogger(level: string, fd: 1 | 2 = 1, format: LogFormat = 'auto', redact: readonly string[] = BASE_REDACT): Logger {
  const human = format === 'pretty' || (format === 'auto' && isatty(fd));
  const destination: DestinationStream = human
    ? pretty({ destination: fd, sync: true, colorize: isatty(fd), translateTime: 'SYS:standard', ignore: 'pid,hostname', singleLine: true })
    : pino.destination(fd);
  return pino(loggerOptions(level, redact), destination);
}
