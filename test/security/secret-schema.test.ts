// Invariant: one annotation, `secret: true` in a TypeBox schema, says which config fields are
// secrets. secretPaths() finds every marked field (through unions, nested objects and maps),
// censorWithSchema() hides exactly those plus secret-named keys where the schema describes
// nothing (free-form maps, unknown JSON) and URL passwords anywhere, and the process logger's
// redaction covers every secret field of every provider and resolver schema.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Type } from 'typebox';
import { CENSORED, censorWithSchema, logRedactPaths, secretPaths } from '../../src/config/secret-fields.ts';
import { providerModules } from '../../src/delivery/registry.ts';
import { REDACT } from '../../src/services.ts';
import { resolverTypes } from '../../src/users/registry.ts';

const schema = Type.Object({
  user: Type.String(),
  key: Type.Optional(Type.String({ secret: true })),
  /** described, not marked: the schema wins over the name */
  showPassword: Type.Optional(Type.Boolean()),
  proxy: Type.Optional(Type.Union([Type.String(), Type.Object({ url: Type.String(), pin: Type.String({ secret: true }) })])),
  nested: Type.Optional(Type.Object({ inner: Type.Object({ token: Type.String({ secret: true }), label: Type.String() }) })),
  headers: Type.Optional(Type.Record(Type.String(), Type.String())),
  creds: Type.Optional(Type.Record(Type.String(), Type.String({ secret: true }))),
  list: Type.Optional(Type.Array(Type.Object({ value: Type.String({ secret: true }) }))),
  payload: Type.Optional(Type.Unknown()),
});

test('secretPaths finds every marked field, through unions, objects, maps and arrays', () => {
  assert.deepEqual(secretPaths(schema).sort(), ['creds.*', 'key', 'list.*.value', 'nested.inner.token', 'proxy.pin']);
  assert.deepEqual(secretPaths(Type.Object({ a: Type.String() })), []);
  assert.deepEqual(secretPaths(Type.String({ secret: true })), [], 'a schema that is one secret has no field path');
  assert.deepEqual(secretPaths(undefined), []);
});

test('censorWithSchema hides marked fields; the name guess only where the schema describes nothing', () => {
  const config = {
    user: 'otpd',
    key: 'k-secret',
    showPassword: true,
    proxy: { url: 'http://proxy:proxy-pw@127.0.0.1:3128', pin: '1234' },
    nested: { inner: { token: 't-secret', label: 'x' } },
    headers: { Authorization: 'Bearer h-secret', Accept: 'text/plain' },
    creds: { anything: 'c-secret', empty: '' },
    list: [{ value: 'l-secret' }],
    payload: { deep: { api_key: 'p-secret', to: '<phone>' } },
    undescribed: { secret: 's-secret' },
  };
  assert.deepEqual(censorWithSchema(config, schema), {
    user: 'otpd',
    key: CENSORED,
    showPassword: true,
    proxy: { url: `http://proxy:${CENSORED}@127.0.0.1:3128/`, pin: CENSORED },
    nested: { inner: { token: CENSORED, label: 'x' } },
    headers: { Authorization: CENSORED, Accept: 'text/plain' },
    creds: { anything: CENSORED, empty: '' },
    list: [{ value: CENSORED }],
    payload: { deep: { api_key: CENSORED, to: '<phone>' } },
    undescribed: { secret: CENSORED },
  });
  // without a schema: the name-based fallback everywhere
  assert.deepEqual(censorWithSchema({ showPassword: true, db_password: 'd', key: 'k' }, undefined), { showPassword: CENSORED, db_password: CENSORED, key: 'k' });
});

test('log redaction paths: the field at the top of a log object and one level down', () => {
  assert.deepEqual(logRedactPaths(['PASSWORD', 'a.b', 'x-api-key']), ['PASSWORD', '*.PASSWORD', 'a.b', '*.a.b', '["x-api-key"]', '*["x-api-key"]']);
});

test('the process logger redacts every secret field of every provider and resolver schema', () => {
  const keys = [...providerModules, ...resolverTypes()].flatMap((m) => m.secretKeys);
  assert.deepEqual([...new Set(keys)].sort(), ['BINDPW', 'PASSWORD', 'Password', 'SMTP_PASSWORD', 'mailpassword', 'password']);
  const lines: string[] = [];
  const logger = pino({ level: 'info', redact: { paths: REDACT, censor: '***' } }, { write: (s: string) => void lines.push(s) });
  keys.forEach((key, i) => {
    logger.info({ [key]: `top-secret-${i}` }, 'top level');
    logger.info({ config: { [key]: `nested-secret-${i}`, URL: 'https://sms.example.com' } }, 'one level down');
  });
  assert.equal(lines.length, keys.length * 2);
  for (const line of lines) assert.ok(!/secret-\d/.test(line), line);
  assert.ok(lines.every((l) => l.includes('***')));
  assert.ok(lines.some((l) => l.includes('https://sms.example.com')), 'other fields stay');
});
