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

/** Where the log goes: a file descriptor (1 stdout, 2 stderr) or a file, appended to. */
export type LogTarget = 1 | 2 | { file: string };

/** A new log file is created with this mode: the group (say `adm`) may read it, others not. */
export const LOG_FILE_MODE = 0o640;

/** The file streams of the loggers createLogger made, for reopenLogFile. */
type FileStream = ReturnType<typeof pino.destination>;
const logFiles = new WeakMap<Logger, FileStream>();

/**
 * A logger shared by Fastify and every service (services.ts's createLogger passes the full
 * redaction list). CLI commands log to stderr (fd 2) so their stdout stays clean; `serve` logs
 * to stdout or, with OTPD_LOG_FILE, to that file (see reopenLogFile).
 * @param to @default 1 (stdout)
 * @param format @default 'auto' (pretty when `to` is a terminal; a file is not one)
 * @param redact @default BASE_REDACT
 */
export function createLogger(level: string, to: LogTarget = 1, format: LogFormat = 'auto', redact: readonly string[] = BASE_REDACT): Logger {
  const terminal = typeof to === 'number' && isatty(to);
  const human = format === 'pretty' || (format === 'auto' && terminal);
  const file = typeof to === 'object' ? openLogFile(to.file) : undefined;
  const sink = file ?? (to as 1 | 2);
  const destination: DestinationStream = human
    ? pretty({ destination: sink, sync: true, colorize: terminal, translateTime: 'SYS:standard', ignore: 'pid,hostname', singleLine: true })
    : file ?? pino.destination(sink as 1 | 2);
  const logger = pino(loggerOptions(level, redact), destination);
  if (file) logFiles.set(logger, file);
  return logger;
}

/** Opens (creates, mode 0640) the log file for appending, synchronously: a bad path fails start-up with its name. */
function openLogFile(path: string): FileStream {
  try {
    return pino.destination({ dest: path, sync: true, append: true, mode: LOG_FILE_MODE });
  } catch (e) {
    throw new Error(`log file ${path} (OTPD_LOG_FILE): ${(e as Error).message}`);
  }
}

/**
 * Closes the log file and opens it again by its name, for logrotate: after the old file was
 * renamed, the next lines go to a new file at the configured path (lines written before the
 * reopen are in the renamed one, none is lost). `serve` calls it on SIGHUP.
 * @returns false when this logger writes to no file
 */
export function reopenLogFile(logger: Logger): boolean {
  const file = logFiles.get(logger);
  if (!file) return false;
  file.reopen();
  return true;
}
