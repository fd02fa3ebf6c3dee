// Invariant: a request parameter that names a property of Object.prototype (constructor,
// __proto__, toString, hasOwnProperty) where otpd looks a value up in a table of allowed names
// (the token list's sortby, the audit search's sortname, qtype and column filters, the lost
// token's type) is an unknown name like any other: the normal envelope, no internal error.
// The HTTP fuzz found /admin/show?sortby=constructor answering an internal error (the table's
// inherited `constructor` reached the query builder as a column).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KEY, startValidationFixture, type ValidationFixture } from '../security/validation-fixture.ts';

const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'LinOtp.constructor'];
let t: ValidationFixture;
before(async () => {
  t = await startValidationFixture();
  assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'P1', otpkey: KEY, pin: 'p', user: 'alice', realm: 'staff' })).json.result.value, true);
});
after(async () => t?.close());

test('/admin/show: sortby naming an inherited property sorts by id', async () => {
  for (const name of NAMES) {
    const r = await t.admin('/admin/show', { sortby: name });
    assert.equal(r.status, 200, `${name}: ${r.body}`);
    assert.equal(r.json.result.status, true, `${name}: ${r.body}`);
    assert.equal(r.json.result.value.data[0]['LinOtp.TokenSerialnumber'], 'P1');
  }
});

test('/audit/search: sortname, qtype and column filters naming an inherited property are ignored', async () => {
  for (const name of NAMES) {
    for (const form of [{ sortname: name }, { qtype: name, query: 'x' }, { [name]: 'x' }] as Record<string, string>[]) {
      const r = await t.admin('/audit/search', form);
      assert.equal(r.status, 200, `${JSON.stringify(form)}: ${r.body}`);
      // LinOTP's audit search answers flexigrid's shape (page, total, rows), not the envelope
      assert.ok(Array.isArray(r.json.rows), `${JSON.stringify(form)}: ${r.body}`);
    }
  }
});

test('/admin/losttoken: a type naming an inherited property is refused as an invalid parameter', async () => {
  for (const name of NAMES.filter((n) => !n.includes('.'))) {
    const r = await t.admin('/admin/losttoken', { serial: 'P1', type: name });
    assert.equal(r.status, 200, `${name}: ${r.body}`);
    assert.equal(r.json.result.status, false, `${name}: ${r.body}`);
    assert.match(r.json.result.error.message, /type/, `${name}: ${r.body}`);
  }
});

test('a provider class named like an inherited property is an unknown class, with its message', async () => {
  const { refuseClass } = await import('../../src/delivery/registry.ts');
  for (const name of ['constructor', 'toString', 'x.__proto__']) assert.match(String(refuseClass(name)), /^unknown provider class /, name);
});

test('the management pages take such a name as an unknown store type', async () => {
  const { isStoreType } = await import('../../src/web/manage/store-forms.ts');
  for (const name of ['constructor', 'toString', '__proto__']) assert.equal(isStoreType(name), false, name);
  assert.equal(isStoreType('ldapresolver'), true);
});

test('/audit/search: a known qtype still filters, an inherited name leaves the search unfiltered', async () => {
  const total = async (form: Record<string, string>) => Number((await t.admin('/audit/search', form)).json.total);
  const all = await total({});
  assert.ok(all > 0);
  assert.ok((await total({ qtype: 'serial', query: 'P1' })) > 0);
  assert.equal(await total({ qtype: 'serial', query: 'NO-SUCH-SERIAL' }), 0);
  // (the searches are audited themselves, without a serial: compare within serial P1's rows)
  assert.equal(await total({ serial: 'P1', qtype: 'constructor', query: 'NO-SUCH-SERIAL' }), await total({ serial: 'P1' }));
});
