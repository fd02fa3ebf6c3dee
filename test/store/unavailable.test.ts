// Invariant: a database outage is told apart from every other failure by the drivers' error
// codes, so it is answered as ERR2008 (RADIUS silent) and never as a wrong password or ERR-311.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDatabaseUnavailable } from '../../src/store/unavailable.ts';

const err = (props: Record<string, unknown>, message = 'x') => Object.assign(new Error(message), props);

test('outages: sockets, PostgreSQL shutdown/connection states, pg and mysql2 connection errors, SQLite disk full', () => {
  for (const e of [
    err({ code: 'ECONNREFUSED' }), err({ code: '57P01' }), err({ code: '08006' }), err({ code: '57P03' }),
    new Error('Connection terminated unexpectedly'), new Error('timeout exceeded when trying to connect'),
    err({ code: 'PROTOCOL_CONNECTION_LOST' }), err({ code: 'ER_SERVER_SHUTDOWN' }), new Error('Pool is closed.'),
    err({ code: 'SQLITE_FULL' }), err({ code: 'SQLITE_IOERR_WRITE' }),
    Object.assign(new AggregateError([err({ code: 'ECONNREFUSED' })]), { code: undefined }),
    new Error('wrapped', { cause: err({ code: 'ECONNRESET' }) }),
  ]) assert.equal(isDatabaseUnavailable(e), true, `${(e as Error).message} ${(e as { code?: string }).code}`);
});

test('not outages: constraint violations, syntax errors, programming errors', () => {
  for (const e of [err({ code: '23505' }), err({ code: '42601' }), err({ code: 'ER_DUP_ENTRY' }), err({ code: 'SQLITE_CONSTRAINT_UNIQUE' }), new TypeError('x is undefined'), 'text', undefined]) {
    assert.equal(isDatabaseUnavailable(e), false, String((e as Error)?.message ?? e));
  }
});
