/**
 * Resolver and realm endpoints through app.inject(): LinOTP response shapes
 * (getRealms as observed from LinOTP 3.4.4), BINDPW censored and round-tripping
 * unchanged, delResolver refused while a realm uses it, testResolver, cache
 * flush, /admin/userlist with paging, and the validation path with an LDAP user.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, FIXTURE_USERS, SLAPD_BIN, startSlapd, type Slapd } from '../fixtures/slapd.ts';

const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw]).toString().trim();

describe('resolver and realm API', { skip: haveBinary(SLAPD_BIN, 'slapd') }, () => {
  let t: TestApp;
  let ldap: Slapd;
  let tmp: string;
  let usersFile: string;

  before(async () => {
    [t, ldap] = await Promise.all([startTestApp(), startSlapd()]);
    tmp = mkdtempSync(join(tmpdir(), 'otpd-api-users-'));
    usersFile = join(tmp, 'users');
    writeFileSync(usersFile, [
      `passthru_user1:${crypt('geheim1')}:1000:1000:Passthru User1,Room 1,+49(0)1234-24,+49(0)5678-24,pass.true@example.com:/:/bin/sh`,
      `email_only:${crypt('geheim1')}:1001:1001:Email Only,,,,email.only@example.com:/:/bin/sh`,
    ].join('\n'));
  });
  after(async () => {
    await t?.close();
    await ldap?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  const ldapForm = () => ({
    name: 'ldapusers', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: ldap.url, LDAPBASE: FIXTURE_BASE,
    BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '2',
  });

  test('setResolver / setRealm / setDefaultRealm answer value true; getRealms has LinOTP\'s shape', async () => {
    for (const [path, form] of [
      ['/system/setResolver', { name: 'myusers', type: 'passwdresolver', fileName: usersFile }],
      ['/system/setResolver', ldapForm()],
      ['/system/setRealm', { realm: 'MyRealm', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.myusers' }],
      ['/system/setRealm', { realm: 'ldaprealm', resolvers: 'useridresolver.LDAPIdResolver.IdResolver.ldapusers' }],
      ['/system/setDefaultRealm', { realm: 'myrealm' }],
    ] as const) {
      const res = await t.admin(path, form);
      assert.equal(res.status, 200, path);
      assert.equal(res.json.result.status, true, `${path}: ${res.body}`);
      assert.equal(res.json.result.value, true, path);
    }
    const realms = await t.admin('/system/getRealms');
    assert.match(realms.body, /"myrealm": \{\n {12}"realmname": "myrealm",\n {12}"entry": "linotp.useridresolver.group.myrealm",\n {12}"useridresolver": \[\n {15}"useridresolver.PasswdIdResolver.IdResolver.myusers"\n {12}\],\n {12}"default": "true",\n {12}"admin": false\n {9}\}/);
    assert.deepEqual(realms.json.result.value.ldaprealm, {
      realmname: 'ldaprealm', entry: 'linotp.useridresolver.group.ldaprealm',
      useridresolver: ['useridresolver.LDAPIdResolver.IdResolver.ldapusers'], admin: false,
    });
    const one = await t.admin('/system/getRealms', { realm: 'LDAPREALM' });
    assert.deepEqual(Object.keys(one.json.result.value), ['ldaprealm']);
    const def = await t.admin('/system/getDefaultRealm');
    assert.deepEqual(Object.keys(def.json.result.value), ['myrealm']);
    assert.equal((await t.admin('/system/setDefaultRealm', { realm: 'nosuch' })).json.result.value, false);
  });

  test('getResolvers / getResolver: LinOTP shape, BINDPW censored, never the password', async () => {
    const list = await t.admin('/system/getResolvers');
    assert.deepEqual(list.json.result.value.myusers, {
      resolvername: 'myusers', entry: 'linotp.passwdresolver.fileName.myusers', type: 'passwdresolver',
      spec: 'useridresolver.PasswdIdResolver.IdResolver.myusers', admin: false,
    });
    assert.equal(list.json.result.value.ldapusers.spec, 'useridresolver.LDAPIdResolver.IdResolver.ldapusers');
    const one = await t.admin('/system/getResolver', { resolver: 'ldapusers' });
    assert.equal(one.json.result.value.type, 'ldapresolver');
    assert.equal(one.json.result.value.resolver, 'ldapusers');
    assert.equal(one.json.result.value.data.BINDPW, '__CENSORED__');
    assert.equal(one.json.result.value.data.LDAPURI, ldap.url);
    for (const body of [list.body, one.body]) assert.ok(!body.includes(FIXTURE_ADMIN_PW), 'no secret in responses');
    const missing = await t.admin('/system/getResolver', { resolver: 'nosuch' });
    assert.deepEqual(missing.json.result.value, { type: null, data: {}, resolver: 'nosuch' });
    // the audit trail never holds the password either
    const rows = await t.services.db.kysely.selectFrom('audit').select(['action', 'info', 'action_detail']).execute();
    assert.ok(rows.some((r) => r.action === 'system/setResolver'));
    assert.ok(!JSON.stringify(rows).includes(FIXTURE_ADMIN_PW));
  });

  test('__CENSORED__ round-trips unchanged (update with what getResolver returned)', async () => {
    const shown = (await t.admin('/system/getResolver', { resolver: 'ldapusers' })).json.result.value;
    const res = await t.admin('/system/setResolver', { name: 'ldapusers', previous_name: 'ldapusers', type: 'ldapresolver', ...shown.data });
    assert.equal(res.json.result.value, true, res.body);
    const test = await t.admin('/system/testResolver', { name: 'ldapusers' });
    assert.equal(test.json.result.value.result, 'success', test.body);
    assert.equal(test.json.result.value.usercount, FIXTURE_USERS.length);
    assert.ok(test.json.result.value.sample.username);
    // an unsaved config with the placeholder uses the stored secret too
    const unsaved = await t.admin('/system/testResolver', { name: 'ldapusers', type: 'ldapresolver', ...shown.data });
    assert.equal(unsaved.json.result.value.result, 'success', unsaved.body);
    const wrong = await t.admin('/system/testResolver', { name: 'x', type: 'ldapresolver', ...shown.data, BINDPW: 'wrong' });
    assert.equal(wrong.json.result.value.result, 'error');
    assert.match(wrong.json.result.value.error, /user store unavailable: .*service bind failed/);
  });

  test('testResolver with username also looks up that login (stored and unsaved configurations)', async () => {
    const stored = await t.admin('/system/testResolver', { name: 'ldapusers', username: 'alice' });
    assert.equal(stored.json.result.value.result, 'success', stored.body);
    assert.equal(stored.json.result.value.user.username, 'alice');
    assert.equal(stored.json.result.value.user.email, 'alice@example.org');
    assert.equal(stored.json.result.value.user.mobile, FIXTURE_USERS[0]!.mobile);
    const shown = (await t.admin('/system/getResolver', { resolver: 'ldapusers' })).json.result.value;
    const unknown = await t.admin('/system/testResolver', { name: 'ldapusers', type: 'ldapresolver', ...shown.data, username: 'nobody-here' });
    assert.equal(unknown.json.result.value.result, 'success', unknown.body);
    assert.equal(unknown.json.result.value.user, null, 'an unknown login is null, not an error');
    const file = await t.admin('/system/testResolver', { name: 'myusers', type: 'passwdresolver', fileName: usersFile, username: 'email_only' });
    assert.equal(file.json.result.value.user.email, 'email.only@example.com');
    const without = await t.admin('/system/testResolver', { name: 'ldapusers' });
    assert.equal('user' in without.json.result.value, false, 'no username: no lookup');
  });

  test('errors: duplicate create, bad type, missing params, delResolver refused while used', async () => {
    const dup = await t.admin('/system/setResolver', { name: 'myusers', type: 'passwdresolver', fileName: usersFile });
    assert.equal(dup.json.result.status, false);
    assert.equal(dup.json.result.error.code, Errors.resolverExists.code);
    const badType = await t.admin('/system/setResolver', { name: 'other', type: 'nosuch' });
    assert.equal(badType.json.result.error.code, Errors.unknownResolverType.code);
    const noUri = await t.admin('/system/setResolver', { name: 'ldap2', type: 'ldapresolver', PRESET: 'openldap', LDAPBASE: 'dc=x' });
    assert.equal(noUri.json.result.error.code, 905);
    assert.match(noUri.json.result.error.message, /LDAPURI/);
    const inUse = await t.admin('/system/delResolver', { resolver: 'myusers' });
    assert.equal(inUse.json.result.status, false);
    assert.equal(inUse.json.result.error.code, Errors.resolverInUse.code);
    assert.match(inUse.json.result.error.message, /'myrealm'/);
    const get = await t.post('/system/getRealms', {});
    assert.equal(get.status, 401, 'admin authentication required');
    const viaGet = await t.app.inject({ method: 'GET', url: '/system/delRealm?realm=myrealm', headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.equal(viaGet.statusCode, 404, 'state changes are POST only');
  });

  test('delRealm / delResolver', async () => {
    assert.equal((await t.admin('/system/setResolver', { name: 'spare', type: 'passwdresolver', fileName: usersFile })).json.result.value, true);
    assert.equal((await t.admin('/system/setRealm', { realm: 'sparerealm', resolvers: 'spare' })).json.result.value, true);
    assert.deepEqual((await t.admin('/system/delRealm', { realm: 'sparerealm' })).json.result.value, { delRealm: { result: true } });
    assert.equal((await t.admin('/system/delResolver', { resolver: 'spare' })).json.result.value, true);
    assert.equal((await t.admin('/system/delResolver', { resolver: 'spare' })).json.result.value, false);
  });

  test('/admin/userlist: realm users, search, paging', async () => {
    const all = await t.admin('/admin/userlist', { realm: 'ldaprealm' });
    assert.equal(all.json.result.status, true, all.body);
    assert.equal(all.json.result.value.length, FIXTURE_USERS.length);
    const alice = all.json.result.value.find((u: Record<string, string>) => u.username === 'alice');
    assert.deepEqual(alice, {
      useridresolver: 'useridresolver.LDAPIdResolver.IdResolver.ldapusers', username: 'alice', userid: `uid=alice,${FIXTURE_BASE}`,
      email: 'alice@example.org', mobile: '+12015550101', phone: '+12015550201', surname: 'Able', givenname: 'Alice',
    });
    const search = await t.admin('/admin/userlist', { realm: 'ldaprealm', username: 'c*' });
    assert.deepEqual(search.json.result.value.map((u: Record<string, string>) => u.username), ['carol']);
    const page1 = await t.admin('/admin/userlist', { realm: 'ldaprealm', rp: '3', page: '1' });
    const page3 = await t.admin('/admin/userlist', { realm: 'ldaprealm', rp: '3', page: '3' });
    assert.equal(page1.json.result.value.length, 3);
    assert.deepEqual(page1.json.detail, { page: 1, pagesize: 3, count: 3, more: true });
    assert.equal(page3.json.result.value.length, FIXTURE_USERS.length - 6);
    assert.equal(page3.json.detail.more, false);
    const def = await t.admin('/admin/userlist', {});
    assert.deepEqual(def.json.result.value.map((u: Record<string, string>) => u.username).sort(), ['email_only', 'passthru_user1']);
    const unknown = await t.admin('/admin/userlist', { realm: 'nosuch' });
    assert.equal(unknown.json.result.error.code, Errors.unknownRealm.code);
  });

  test('resolverCacheFlush answers true', async () => {
    const res = await t.admin('/system/resolverCacheFlush');
    assert.equal(res.json.result.value, true);
  });

  test('token for a directory user: user@realm and realm= resolve to the same owner', async () => {
    const init = await t.admin('/admin/init', { type: 'hmac', serial: 'LDAPTOK1', otpkey: '3132333435363738393031323334353637383930', user: 'carol@ldaprealm' });
    assert.equal(init.json.result.value, true, init.body);
    const show = await t.admin('/admin/show', { serial: 'LDAPTOK1' });
    const tok = show.json.result.value.data[0];
    assert.equal(tok['LinOtp.IdResClass'], 'useridresolver.LDAPIdResolver.IdResolver.ldapusers');
    assert.equal(tok['LinOtp.Userid'], `uid=carol,${FIXTURE_BASE}`);
    assert.deepEqual(tok['LinOtp.RealmNames'], ['ldaprealm']);
    const byRealm = await t.admin('/admin/show', { user: 'carol', realm: 'ldaprealm' });
    assert.deepEqual(byRealm.json.result.value.data.map((d: Record<string, unknown>) => d['LinOtp.TokenSerialnumber']), ['LDAPTOK1']);
  });
});
