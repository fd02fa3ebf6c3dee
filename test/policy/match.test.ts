import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimeOfRequest, matchPolicy } from '../../src/policy/evaluate.ts';
import { type MatchSubject, type PolicyInput, clientWithoutHostBits, compilePolicy, prepareSubject } from '../../src/policy/match.ts';

type Classes = [user: number, realm: number, client: number] | null;

/** Matches a one-off policy against a subject; returns [user, realm, client] classes or null. */
function m(fields: Partial<PolicyInput>, subject: MatchSubject, at = Date.now()): Classes {
  const p = compilePolicy({ name: 'p', scope: 'authentication', action: 'passthru', realm: '*', user: '*', client: '*', ...fields });
  const r = matchPolicy(p, prepareSubject(subject), new TimeOfRequest(at));
  return r ? [r.user, r.realm, r.client] : null;
}

const alice = { login: 'alice', realm: 'corp' };

// user classes: 3 exact, 2 pattern/resolver/attribute, 1 '*'; 0 = not checked; null = no match
const userCases: [string, MatchSubject, number | null][] = [
  ['*', alice, 1],
  ['alice', alice, 3],
  ['alice', { login: 'alicex', realm: 'corp' }, null],
  ['alice', { login: 'xalice', realm: 'corp' }, null],
  ['ali*', alice, 2],
  ['ali*', { login: 'malice', realm: 'corp' }, null],
  ['pass*', { login: 'passthru_user1', realm: 'corp' }, 2],
  // '.' is a regex dot: john.doe also matches johnXdoe (LinOTP semantics)
  ['john.doe', { login: 'john.doe', realm: 'corp' }, 3],
  ['john.doe', { login: 'johnXdoe', realm: 'corp' }, 2],
  ['john\\.doe', { login: 'johnXdoe', realm: 'corp' }, null],
  ['.*', alice, 2],
  ['alice@corp', alice, 3],
  ['alice@CORP', { login: 'alice', realm: 'Corp' }, 3],
  ['alice@corp', { login: 'alice', realm: 'lab' }, null],
  ['*@corp', { login: 'bob', realm: 'corp' }, 2],
  ['*@corp', { login: 'bob', realm: 'lab' }, null],
  ['*@corp', { login: 'bob', realm: 'corporate' }, null],
  ['a*@co*', alice, 2],
  ['ldap:', { ...alice, resolver: 'ldap' }, 2],
  ['ldap:', { ...alice, resolver: 'sql' }, null],
  ['ldap:', alice, null],
  ['alice.ldap:', { ...alice, resolver: 'ldap' }, 3],
  ['alice.ldap:', { login: 'bob', realm: 'corp', resolver: 'ldap' }, null],
  ['*.ldap:', { login: 'bob', realm: 'corp', resolver: 'ldap' }, 2],
  ['john.doe.ldap:', { login: 'john.doe', realm: 'corp', resolver: 'ldap' }, 3],
  ['alice.ldap', { ...alice, resolver: 'ldap' }, null], // no trailing colon: a login pattern, not a resolver
  ['#mobile', { ...alice, userInfo: { mobile: '+12015550100' } }, 2],
  ['#mobile', { ...alice, userInfo: { mail: 'a@example.org' } }, null],
  ['#mobile', { ...alice, userInfo: { mobile: '' } }, null],
  ['#mobile', alice, null],
  ['*#mobile', { ...alice, userInfo: { mobile: '+12015550100' } }, 2],
  ['#mobile==+12015550100', { ...alice, userInfo: { mobile: ' +12015550100 ' } }, 2],
  ['#mobile==+12015550100', { ...alice, userInfo: { mobile: '+12015550199' } }, null],
  ['#mobile!=+12015550100', { ...alice, userInfo: { mobile: '+12015550199' } }, 2],
  ['#mobile!=+12015550100', { ...alice, userInfo: { mail: 'x' } }, 2],
  ['#mobile!=+12015550100', { ...alice, userInfo: { mobile: '+12015550100' } }, null],
  ['#email~=@example\\.org$', { ...alice, userInfo: { email: 'alice@example.org' } }, 2],
  ['#email~=@example\\.org$', { ...alice, userInfo: { email: 'alice@example.org.evil' } }, null],
  ['alice#department==IT', { ...alice, userInfo: { department: 'IT' } }, 2],
  ['bob#department==IT', { ...alice, userInfo: { department: 'IT' } }, null],
  ['*@corp#mobile', { ...alice, userInfo: { mobile: '1' } }, 2],
  // exclusion
  ['*, !alice', alice, null],
  ['*, !alice', { login: 'bob', realm: 'corp' }, 1],
  ['alice, !alice', alice, null], // negation wins over an exact positive match
  ['!alice, alice', alice, null],
  ['-bob, *', { login: 'bob', realm: 'corp' }, null],
  ['*, !*@lab', { login: 'carol', realm: 'lab' }, null],
  ['*, !*@lab', { login: 'carol', realm: 'corp' }, 1],
  ['*, !#mobile', { ...alice, userInfo: { mobile: '1' } }, null],
  ['*, !ali*', alice, null],
  ['*, !ldap:', { ...alice, resolver: 'ldap' }, null],
  // best class of several entries
  ['*, alice', alice, 3],
  ['*, ali*', alice, 2],
  ['ali*, alice@corp', alice, 3],
  // user filter not applied when the request has no user
  ['alice', { realm: 'corp' }, 0],
];

for (const [user, subject, expected] of userCases) {
  test(`user '${user}' vs ${JSON.stringify(subject)} → ${expected}`, () => {
    const r = m({ user }, subject);
    assert.equal(r === null ? null : r[0], expected);
  });
}

const realmCases: [string, MatchSubject, number | null][] = [
  ['corp', alice, 2],
  ['corp', { login: 'a', realm: 'CORP' }, 2],
  ['CORP', alice, 2],
  ['lab', alice, null],
  ['*', alice, 1],
  ['lab, corp', alice, 2],
  ['*, corp', alice, 2],
  ['*, !corp', alice, null], // LinOTP lets '*' win here; otpd: the exclusion wins
  ['*, -corp', alice, null],
  ['*, !lab', alice, 1],
  ['corp', { login: 'alice' }, 0],
];

for (const [realm, subject, expected] of realmCases) {
  test(`realm '${realm}' vs ${JSON.stringify(subject)} → ${expected}`, () => {
    const r = m({ realm }, subject);
    assert.equal(r === null ? null : r[1], expected);
  });
}

const clientCases: [string, string | undefined, number | null, string?][] = [
  ['10.0.0.0/8', '10.1.2.3', 2],
  ['10.0.0.0/8', '11.0.0.1', null],
  ['10.0.0.0/8, !10.66.0.0/16', '10.66.1.1', null],
  ['10.0.0.0/8, !10.66.0.0/16', '10.67.1.1', 2],
  ['*, !192.0.2.7', '192.0.2.7', null],
  ['*, !192.0.2.7', '192.0.2.8', 1],
  ['192.0.2.7', '192.0.2.7', 2],
  ['192.0.2.7', '192.0.2.70', null],
  ['0.0.0.0/0', '203.0.113.9', 2],
  ['2001:db8::/32', '2001:db8:1::5', 2],
  ['2001:db8::/32', '2001:db9::1', null],
  ['2001:db8::/32', '10.0.0.1', null],
  ['2001:DB8:0:0::1', '2001:db8::1', 2],
  ['*, !2001:db8:bad::/48', '2001:db8:bad:1::1', null],
  ['*, !2001:db8:bad::/48', '2001:db8:bad0::1', 1],
  ['::/0', '2001::1', 2],
  ['::1', '::1', 2],
  ['10.0.0.1', '::ffff:10.0.0.1', 2], // IPv4-mapped IPv6 is the IPv4 host
  ['::ffff:10.0.0.0/104', '10.1.1.1', 2],
  ['fe80::/10', 'fe80::1:2:3:4', 2],
  ['*', 'not-an-ip', 1],
  ['10.0.0.0/8', 'not-an-ip', null],
  ['*, !10.0.0.1', 'not-an-ip', null], // cannot check the exclusion: fail closed
  ['10.0.0.0/8', undefined, 0],
];

for (const [client, ip, expected] of clientCases) {
  test(`client '${client}' vs ${ip} → ${expected}`, () => {
    const r = m({ client }, { ...alice, client: ip });
    assert.equal(r === null ? null : r[2], expected);
  });
}

test('empty user/client match nobody outside the five scopes, unless the filter is not applied', () => {
  const n = (subject: MatchSubject) => {
    const p = compilePolicy({ name: 'n', scope: 'audit', action: 'view', realm: '*', user: '', client: '' });
    return matchPolicy(p, prepareSubject(subject), new TimeOfRequest(0)) !== undefined;
  };
  assert.equal(n({ login: 'alice', realm: 'corp' }), false);
  assert.equal(n({ realm: 'corp', client: '10.0.0.1' }), false);
  assert.equal(n({ realm: 'corp' }), true);
  for (const scope of ['authentication', 'enrollment', 'authorization', 'selfservice', 'admin']) {
    const action = { authentication: 'passthru', enrollment: 'maxtoken=2', authorization: 'authorize', selfservice: 'enable', admin: 'show' }[scope]!;
    // selfservice: no otpd action is supported there; a policy stored before that still compiles
    const p = compilePolicy({ name: 'x', scope, action, realm: '*', user: '', client: '' }, { stored: scope === 'selfservice' });
    assert.ok(matchPolicy(p, prepareSubject({ login: 'alice', realm: 'corp', client: '10.0.0.1' }), new TimeOfRequest(0)), scope);
  }
});

// Local wall-clock times: policies are evaluated in the server's time zone, as LinOTP does.
const local = (y: number, mo: number, d: number, h: number, mi: number) => new Date(y, mo - 1, d, h, mi).getTime();
// 2026-11-30 is a Monday; 2026-12-05 a Saturday; 2026-12-06 a Sunday
const timeCases: [string, number, boolean][] = [
  ['* 8-17 * * 1-5 *', local(2026, 11, 30, 8, 0), true],
  ['* 8-17 * * 1-5 *', local(2026, 11, 30, 7, 59), false],
  ['* 8-17 * * 1-5 *', local(2026, 11, 30, 17, 59), true],
  ['* 8-17 * * 1-5 *', local(2026, 11, 30, 18, 0), false],
  ['* 8-17 * * 1-5 *', local(2026, 12, 5, 10, 0), false],
  ['* 8-17 * * mon-fri *', local(2026, 12, 4, 12, 0), true],
  ['* * * * 0 *', local(2026, 12, 6, 12, 0), true],
  ['* * * * 7 *', local(2026, 12, 6, 12, 0), true],
  ['* * * * sun *', local(2026, 12, 6, 12, 0), true],
  ['* * * * 0 *', local(2026, 11, 30, 12, 0), false],
  ['* * * * sat-sun *', local(2026, 12, 6, 12, 0), true],
  ['0-29 * * * * *', local(2026, 11, 30, 9, 29), true],
  ['0-29 * * * * *', local(2026, 11, 30, 9, 30), false],
  ['*/15 * * * * *', local(2026, 11, 30, 9, 45), true],
  ['*/15 * * * * *', local(2026, 11, 30, 9, 46), false],
  ['* * 1,15 * * *', local(2026, 12, 15, 0, 0), true],
  ['* * * dec * *', local(2026, 12, 15, 0, 0), true],
  ['* * * * * 2026', local(2026, 12, 31, 23, 59), true],
  ['* * * * * 2026', local(2027, 1, 1, 0, 0), false],
  ['* * * * * 2025-2027', local(2027, 1, 1, 0, 0), true],
  ['*; !* * 24-26 12 * *', local(2026, 12, 24, 12, 0), false],
  ['*; !* * 24-26 12 * *', local(2026, 12, 27, 0, 0), true],
  ['* 8-17 * * 1-5 *; * 10-12 * * 6 *', local(2026, 12, 5, 11, 0), true],
  ['* 8-17 * * 1-5 *; -* 12 * * * *', local(2026, 11, 30, 12, 30), false],
  ['', local(2026, 11, 30, 3, 0), true],
];

for (const [time, at, expected] of timeCases) {
  test(`time '${time}' at ${new Date(at).toString().slice(0, 21)} → ${expected}`, () => {
    assert.equal(m({ time }, alice, at) !== null, expected);
  });
}

test('client networks with host bits set are refused, naming the network meant', () => {
  assert.throws(() => m({ client: '10.0.0.5/8' }, alice), /'10\.0\.0\.5\/8' has host bits set; did you mean 10\.0\.0\.0\/8\?/);
  assert.throws(() => m({ client: '*, !2001:db8::1/32' }, alice), /did you mean !2001:db8::\/32\?/);
  assert.throws(() => m({ client: '10.0.0.0/' }, alice), /'10\.0\.0\.0\/' is not an IP address or network/);
  assert.equal(clientWithoutHostBits('10.0.0.0/8, !192.0.2.0/24'), undefined);
  assert.equal(clientWithoutHostBits('10.1.2.3/8, !192.0.2.7/24, *'), '10.0.0.0/8, !192.0.2.0/24, *');
});
