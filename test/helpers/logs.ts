import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { REDACT } from '../../src/services.ts';
import { loggerOptions } from '../../src/util/logger.ts';

/** One JSON log line as pino wrote it, parsed. */
export type LogLine = { level: number; msg: string; reqId?: string; [k: string]: unknown };

export interface CapturedLogs {
  /** otpd's logger (its redaction, serializers and request ids), writing into memory. */
  logger: Logger;
  /** The lines as written, unparsed (to look for a secret anywhere, or a key twice). */
  raw: string[];
  /** The lines parsed. */
  lines(): LogLine[];
}

/** A logger with otpd's options (src/util/logger.ts, the full redaction list) whose JSON lines the test can read. */
export function captureLogs(level = 'debug'): CapturedLogs {
  const raw: string[] = [];
  const logger = pino(loggerOptions(level, REDACT), new Writable({
    write(chunk, _enc, cb) {
      raw.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  }));
  return { logger, raw, lines: () => raw.map((l) => JSON.parse(l) as LogLine) };
}
