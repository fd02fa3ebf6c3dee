/**
 * Tells a database that cannot be used right now (server stopped or restarting, connection cut,
 * connect timeout, pool closed, SQLite's disk full or I/O error) from every other failure, so the
 * faces answer it as an outage (ERR2008 in the envelope, silence over RADIUS) and never as a wrong
 * password or an internal error. The cause stays in the log.
 *
 * Matched by the drivers' error codes: node's socket codes, PostgreSQL's SQLSTATE classes 08
 * (connection exception) and 57P (operator intervention: shutdown, crash, cannot connect now),
 * pg's and pg-pool's own connection messages, mysql2's protocol codes and MariaDB's shutdown
 * errors, better-sqlite3's SQLITE_FULL / SQLITE_IOERR* / SQLITE_CANTOPEN / SQLITE_BUSY.
 */
const SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ENOSPC', 'EIO']);
const MYSQL = new Set([
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR', 'PROTOCOL_ENQUEUE_AFTER_QUIT',
  'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_CONNECTION_KILLED', 'ER_QUERY_INTERRUPTED', 'ER_NORMAL_SHUTDOWN', 'ER_SHUTDOWN_COMPLETE',
  'ER_LOCK_WAIT_TIMEOUT', 'ER_CLIENT_INTERACTION_TIMEOUT', 'ER_NET_READ_ERROR', 'ER_NET_READ_INTERRUPTED', 'ER_NET_ERROR_ON_WRITE',
  'ER_UNKNOWN_COM_ERROR', 'ER_CANT_CREATE_THREAD', 'ER_OUT_OF_RESOURCES', 'ER_RECORD_FILE_FULL', 'ER_DISK_FULL',
]);
const MESSAGES = [
  /^Connection terminated/, // pg: the server closed the socket (with or without "unexpectedly")
  /^timeout exceeded when trying to connect/, // pg-pool's connectionTimeoutMillis
  /^Client has encountered a connection error and is not queryable/,
  /^Cannot use a pool after calling end on the pool/,
  /^Pool is closed/, // mysql2
  /^Can't add new command when connection is in closed state/, // mysql2
  /^Connection lost/, // mysql2
  /^Query read timeout/,
];

export function isDatabaseUnavailable(e: unknown): boolean {
  for (let err = e, depth = 0; err && typeof err === 'object' && depth < 4; err = (err as { cause?: unknown }).cause, depth++) {
    const { code, message, errors } = err as { code?: unknown; message?: unknown; errors?: unknown };
    if (typeof code === 'string') {
      if (SOCKET.has(code) || MYSQL.has(code)) return true;
      if (/^(08|57P|53)/.test(code) && code.length === 5) return true; // PostgreSQL SQLSTATE: connection, shutdown, resources
      if (/^SQLITE_(FULL|IOERR|CANTOPEN|BUSY|PROTOCOL|NOMEM)/.test(code)) return true;
    }
    if (typeof message === 'string' && MESSAGES.some((m) => m.test(message))) return true;
    // an AggregateError (net's happy-eyeballs connect over several addresses)
    if (Array.isArray(errors) && errors.some((x) => isDatabaseUnavailable(x))) return true;
  }
  return false;
}
