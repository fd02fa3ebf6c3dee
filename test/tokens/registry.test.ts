// Token type names come from requests: a name that is a property of every JavaScript object
// (`constructor`, `__proto__`, `hasOwnProperty`) is an unknown type, never an alias (found by
// the fault-suite fuzz: /admin/init type=constructor answered an internal error).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/tokens/all.ts';
import { canonicalType, requireTokenType, tokenType } from '../../src/tokens/registry.ts';

test('object property names are no token types or aliases', () => {
  for (const name of ['constructor', '__proto__', 'hasOwnProperty', 'toString', 'CONSTRUCTOR']) {
    assert.equal(canonicalType(name), name.toLowerCase(), name);
    assert.equal(tokenType(name), undefined, name);
    assert.throws(() => requireTokenType(name), /not supported/, name);
  }
  assert.equal(canonicalType('HOTP'), 'hmac');
  assert.equal(tokenType('totp')?.type, 'totp');
});
