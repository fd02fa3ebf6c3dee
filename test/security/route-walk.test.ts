// Invariant: every route Fastify has registered is classified. A route that is not on the
// explicit public list (validation, the /auth test page and its assets, health probes,
// /admin/login) refuses every method without credentials, with a revoked or expired API key,
// an unknown key, or an ended session, with ERR2001 (HTTP 401) in LinOTP's envelope, and a
// session without the right X-CSRF-TOKEN with ERR2002 (HTTP 403) — before it looks at any
// parameter, so a refused caller learns nothing (not even whether a serial exists). No
// answer of any route (body or header), no audit row and no log line ever holds a secret the
// system keeps: token seeds (hex, base32, base64), PINs, static passwords, provider, resolver,
// RADIUS and config passwords, the admin password, API keys. The otpauth URL of a generated
// seed and a new API key are shown once, in the answer that made them, never again. Malformed
// input (garbage names, huge values, JSON objects, bad JSON, a foreign content type) never
// gets a 500 or a stack trace.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { hotp } from '../../src/otp/hotp.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { base32 } from '../../src/tokens/seed.ts';
import { base32Decode } from '../helpers/base32.ts';

type Method = 'GET' | 'POST' | 'HEAD';
type Form = Record<string, string>;

// ---- the secrets this test plants (each unique, so a hit is never a coincidence) ----
const HOTP_KEY = Buffer.from('route-walk-hotp-seed-0001', 'utf8');
const SPARE_KEY = Buffer.from('route-walk-spare-seed-002', 'utf8');
const LOADED_KEY = Buffer.from('route-walk-loaded-seed-03', 'utf8');
const HOTP_PIN = 'hotpPin-k41z';
const NEW_PIN = 'setPin-q08v';
const SPASS_PIN = 'spassPin-m27d';
const PW_PASSWORD = 'staticPw-r63t';
const PW_PIN = 'pwPin-x19c';
const SMS_PASSWORD = 'smsGwPass-h52n';
const SMS_APIKEY = 'smsApikey-w84j';
const SMS_BEARER = 'smsBearer-e36u';
const MAIL_PASSWORD = 'smtpPass-b71s';
const MANAGED_PASSWORD = 'managedPw-p90f';
const BINDPW = 'ldapBindPw-g45y';
const SQL_PASSWORD = 'sqlDbPass-c28o';
const TYPED_PASSWORD = 'typedCfgPw-n13a';
const LEGACY_PASSWORD = 'legacySmsPw-v67l';
const RADIUS_SECRET = 'radiusSecret-d04i';
/** USERNAME:PASSWORD as the HTTP gateway receives them (Basic authentication). */
const SMS_BASIC = Buffer.from(`otpd:${SMS_PASSWORD}`).toString('base64');
const ADMIN_PASSWORD = 'admin-password-1';
const NEW_ADMIN_PASSWORD = 'walkAdminPw-t58k';

const keyForms = (k: Buffer) => [k.toString('hex'), k.toString('hex').toUpperCase(), base32(k), k.toString('base64'), k.toString('base64url'), k.toString('utf8')];

/** Every secret and every form of it that must never be seen; grows as secrets are made. */
const SECRETS = new Map<string, string>();
const plant = (label: string, ...values: string[]) => values.forEach((v, i) => SECRETS.set(v, values.length > 1 ? `${label}#${i}` : label));
plant('HOTP seed', ...keyForms(HOTP_KEY));
plant('spare HOTP seed', ...keyForms(SPARE_KEY));
plant('loaded (seed file) HOTP seed', ...keyForms(LOADED_KEY));
plant('SMS gateway Basic credentials', SMS_BASIC);
for (const [label, v] of Object.entries({ HOTP_PIN, NEW_PIN, SPASS_PIN, PW_PASSWORD, PW_PIN, SMS_PASSWORD, SMS_APIKEY, SMS_BEARER, MAIL_PASSWORD, MANAGED_PASSWORD, BINDPW, SQL_PASSWORD, TYPED_PASSWORD, LEGACY_PASSWORD, RADIUS_SECRET, ADMIN_PASSWORD, NEW_ADMIN_PASSWORD })) plant(label, v);

function assertNoSecret(text: string, where: string): void {
  for (const [secret, label] of SECRETS) assert.ok(!text.includes(secret), `${where} holds the secret ${label}`);
}

/** Stack frames, source paths, Node internals: never in an answer. */
const STACK = /\bat [\w$.<>]+ \(|\bat (file|node):|\/src\/[\w/-]+\.ts|\.ts:\d+|node_modules|node:internal|\b(TypeError|ReferenceError|SyntaxError): /;

// ---- the route classification: every route Fastify reports must be in here ----

const PUBLIC = new Set([
  '/healthz', '/readyz', '/maintenance/check_status', '/healthcheck/status',
  '/validate/check', '/validate/simplecheck', '/validate/samlcheck', '/validate/check_s', '/validate/check_t', '/validate/check_status',
  '/auth/index', '/auth/index3', '/auth/check', '/auth/auth.js', '/auth/auth.css', '/auth/favicon.svg',
  '/auth/challenge_response', '/auth/challenge', '/auth/challenge.js',
  '/admin/login',
  '/userservice/pre_context', '/userservice/login', '/userservice/logout',
]);

/**
 * The self-service routes: they answer only a user session (cookie `user_selfservice` plus an
 * equal `session` parameter); every admin credential is refused there as no credential (2900).
 */
const USER_ROUTES = new Set(['/userservice/userinfo', '/userservice/usertokenlist', '/userservice/context',
  ...['enable', 'disable', 'delete', 'reset', 'unassign', 'setpin', 'setdescription', 'resync', 'verify', 'assign', 'getSerialByOtp', 'enroll', 'history'].map((c) => `/userservice/${c}`)]);

/**
 * The management pages (HTML, not the JSON API): `public` ones answer anyone (the login form
 * and its assets); `session` ones send a browser without a session to the login page (303)
 * and refuse a POST without the session's CSRF token (403), before looking at anything else.
 */
const WEB_PAGES: Record<string, 'public' | 'session' | 'portal'> = {
  '/manage': 'public',
  '/manage/': 'session',
  '/manage/login': 'public',
  '/manage/logout': 'session',
  '/manage/check-stores': 'session',
  '/manage/assets/*': 'public',
  '/manage/users': 'session',
  '/manage/users/:realm/:login': 'session',
  '/manage/resolvers': 'session',
  '/manage/resolvers/new/:type': 'session',
  '/manage/resolvers/:name': 'session',
  '/manage/resolvers/:name/delete': 'session',
  '/manage/realms': 'session',
  '/manage/realms/:realm': 'session',
  '/manage/realms/:realm/default': 'session',
  '/manage/realms/:realm/delete': 'session',
  '/manage/tokens': 'session',
  '/manage/tokens/enroll': 'session',
  '/manage/tokens/:serial': 'session',
  ...Object.fromEntries(['enable', 'disable', 'reset', 'resync', 'pin', 'set', 'assign', 'unassign', 'remove'].map((a) => [`/manage/tokens/:serial/${a}`, 'session' as const])),
  '/manage/policies': 'session',
  '/manage/policies/new': 'session',
  '/manage/policies/import': 'session',
  '/manage/policies/export': 'session',
  '/manage/policies/simulate': 'session',
  '/manage/policies/:name': 'session',
  '/manage/policies/edit/:name': 'session',
  '/manage/policies/:name/delete': 'session',
  '/manage/radius': 'session',
  '/manage/radius/new': 'session',
  '/manage/radius/:name': 'session',
  '/manage/radius/:name/secret': 'session',
  '/manage/radius/:name/delete': 'session',
  '/manage/settings': 'session',
  '/manage/settings/reset': 'session',
  '/manage/settings/add': 'session',
  '/manage/admins': 'session',
  '/manage/admins/:name': 'session',
  '/manage/admins/:name/keys': 'session',
  '/manage/admins/:name/key': 'session',
  '/manage/admins/:name/keys/:id/revoke': 'session',
  '/manage/admins/:name/delete': 'session',
  '/manage/audit': 'session',
  '/manage/audit/export': 'session',
  '/manage/audit/verify': 'session',
  '/manage/providers': 'session',
  '/manage/providers/new/:class': 'session',
  '/manage/providers/:type/:name': 'session',
  '/manage/providers/:type/:name/test': 'session',
  '/manage/providers/:type/:name/default': 'session',
  '/manage/providers/:type/:name/delete': 'session',
  '/manage/delivery': 'session',
  // the self-service portal: `portal` pages need a user session (cookie `user_selfservice`)
  '/selfservice': 'public',
  '/selfservice/login': 'public',
  '/selfservice/login/second': 'public',
  '/selfservice/assets/*': 'public',
  '/selfservice/': 'portal',
  '/selfservice/logout': 'portal',
  '/selfservice/enroll': 'portal',
  '/selfservice/history': 'portal',
  ...Object.fromEntries(['enable', 'disable', 'reset', 'delete', 'description', 'resync', 'verify'].map((a) => [`/selfservice/tokens/:serial/${a}`, 'portal' as const])),
};
const isWebPage = (url: string) => url in WEB_PAGES;
/** A page route's URL with its parameters filled in with objects the walk made. */
const pageUrl = (url: string) => url.replace(':serial', 'HOTP1');

let spareKeyId = 0;
/**
 * Realistic parameters per route (real serials, names and keys), so a refusal is about the
 * credentials and never about a missing parameter, and the admin walk reaches the handler.
 * Deleting calls aim at throwaway objects so the walk does not pull the ground from under itself.
 */
const PARAMS: Record<string, () => Form> = {
  '/healthz': () => ({}),
  '/readyz': () => ({}),
  '/maintenance/check_status': () => ({}),
  '/healthcheck/status': () => ({}),
  '/metrics': () => ({}),
  '/validate/check': () => ({ user: 'alice', realm: 'corp', pass: `${HOTP_PIN}${hotp(HOTP_KEY, 1)}` }),
  '/validate/simplecheck': () => ({ user: 'alice', realm: 'corp', pass: `${HOTP_PIN}${hotp(HOTP_KEY, 2)}` }),
  '/validate/samlcheck': () => ({ user: 'alice', realm: 'corp', pass: `${HOTP_PIN}${hotp(HOTP_KEY, 3)}` }),
  '/validate/check_s': () => ({ serial: 'PW1', pass: `${PW_PIN}${PW_PASSWORD}` }),
  '/validate/check_t': () => ({ transactionid: '123456789012', pass: `${SPASS_PIN}` }),
  '/validate/check_status': () => ({ transactionid: '123456789012', pass: HOTP_PIN, user: 'alice', realm: 'corp' }),
  '/auth/index': () => ({}),
  '/auth/index3': () => ({}),
  // the login page's check: a wrong value (the walk's HOTP counters belong to /validate/*)
  '/auth/check': () => ({ user: 'alice', realm: 'corp', pass: `${HOTP_PIN}000000` }),
  '/auth/challenge_response': () => ({}),
  '/auth/challenge': () => ({ user: 'alice', realm: 'corp', pass: `${HOTP_PIN}000000` }),
  '/auth/challenge.js': () => ({}),
  '/auth/auth.js': () => ({}),
  '/auth/auth.css': () => ({}),
  '/auth/favicon.svg': () => ({}),
  '/admin/login': () => ({ username: 'admin', password: ADMIN_PASSWORD }),
  '/userservice/pre_context': () => ({}),
  '/userservice/login': () => ({ login: 'alice', password: 'alice-dir-pw', realm: 'corp' }),
  '/userservice/logout': () => ({}),
  '/userservice/userinfo': () => ({}),
  '/userservice/usertokenlist': () => ({}),
  '/userservice/context': () => ({}),
  '/userservice/enable': () => ({ serial: 'HOTP1' }),
  '/userservice/disable': () => ({ serial: 'HOTP1' }),
  '/userservice/delete': () => ({ serial: 'HOTP1' }),
  '/userservice/reset': () => ({ serial: 'HOTP1' }),
  '/userservice/unassign': () => ({ serial: 'HOTP1' }),
  '/userservice/setpin': () => ({ serial: 'HOTP1', userpin: 'walk-pin' }),
  '/userservice/setdescription': () => ({ serial: 'HOTP1', description: 'walk' }),
  '/userservice/resync': () => ({ serial: 'HOTP1', otp1: '123456', otp2: '234567' }),
  '/userservice/verify': () => ({ serial: 'HOTP1', otp: '123456' }),
  '/userservice/assign': () => ({ serial: 'HOTP1', otp: '123456' }),
  '/userservice/getSerialByOtp': () => ({ otp: '123456' }),
  '/userservice/enroll': () => ({ type: 'totp' }),
  '/userservice/history': () => ({}),
  '/admin/logout': () => ({}),
  '/admin/apikey/list': () => ({ admin: 'admin' }),
  '/admin/apikey/create': () => ({ admin: 'admin', label: 'walk' }),
  '/admin/apikey/revoke': () => ({ id: String(spareKeyId) }),
  '/admin/admins/list': () => ({}),
  '/admin/admins/create': () => ({ name: 'walkadmin', password: NEW_ADMIN_PASSWORD }),
  '/admin/admins/delete': () => ({ name: 'nosuchadmin' }),
  '/admin/init': () => ({ type: 'hmac', serial: 'WALK1', otpkey: HOTP_KEY.toString('hex'), pin: HOTP_PIN, description: 'walk' }),
  '/admin/show': () => ({ serial: 'HOTP1' }),
  '/admin/loadtokens': () => ({ type: 'oathcsv', file: `WALKCSV1,${LOADED_KEY.toString('hex')},hotp,6\n` }),
  '/admin/remove': () => ({ serial: 'SPARE2' }),
  '/admin/enable': () => ({ serial: 'SPARE1' }),
  '/admin/disable': () => ({ serial: 'SPARE1' }),
  '/admin/reset': () => ({ serial: 'SPARE1' }),
  '/admin/resync': () => ({ serial: 'SPARE1', otp1: hotp(SPARE_KEY, 5), otp2: hotp(SPARE_KEY, 6) }),
  '/admin/set': () => ({ serial: 'SPARE1', pin: NEW_PIN, description: 'walked' }),
  '/admin/assign': () => ({ serial: 'SPARE1', user: 'bob', realm: 'corp', pin: NEW_PIN }),
  '/admin/unassign': () => ({ serial: 'SPARE1' }),
  '/admin/getTokenOwner': () => ({ serial: 'HOTP1' }),
  '/admin/losttoken': () => ({ serial: 'LOST1' }),
  '/admin/getSerialByOtp': () => ({ otp: hotp(SPARE_KEY, 20) }),
  '/admin/check_serial': () => ({ serial: 'HOTP1' }),
  '/admin/copyTokenPin': () => ({ from: 'SPARE1', to: 'LOST1' }),
  '/admin/copyTokenUser': () => ({ from: 'LOST1', to: 'SPARE2' }),
  '/admin/tokenrealm': () => ({ serial: 'SPARE1', realms: 'corp' }),
  '/admin/setValidity': () => ({ serial: 'SPARE1', validityPeriodEnd: '2099-01-01T00:00:00Z', countAuthMax: '100000' }),
  '/admin/setPin': () => ({ serial: 'SPARE1', userpin: NEW_PIN }),
  '/admin/userlist': () => ({ realm: 'corp', username: '*' }),
  '/audit/search': () => ({ rp: '1000' }),
  '/audit/verify': () => ({}),
  '/system/setConfig': () => ({ key: 'walk.password', value: TYPED_PASSWORD, type: 'password' }),
  '/system/getConfig': () => ({}),
  '/system/getConfigCatalogue': () => ({}),
  '/system/delConfig': () => ({ key: 'walk.nothing' }),
  '/system/setDefault': () => ({ DefaultMaxFailCount: '10' }),
  '/system/setPolicy': () => ({ name: 'walkpol', scope: 'enrollment', action: 'maxtoken=50', realm: 'corp', user: '*', client: '' }),
  '/system/getPolicy': () => ({}),
  '/system/delPolicy': () => ({ name: 'nosuchpolicy' }),
  '/system/importPolicy': () => ({ file: '[walkimport]\nscope = enrollment\naction = maxtoken=40\nrealm = corp\nuser = *\nclient = \n' }),
  '/system/checkPolicy': () => ({ scope: 'enrollment', action: 'maxtoken', user: 'alice', realm: 'corp', client: '127.0.0.1' }),
  '/system/getPolicyDef': () => ({}),
  '/system/setProvider': () => ({ type: 'sms', name: 'smsgw', class: 'HttpSMSProvider', timeout: '5', config: smsProviderConfig() }),
  '/system/getProvider': () => ({ type: 'sms' }),
  '/system/getProviderDef': () => ({}),
  '/system/setDefaultProvider': () => ({ type: 'sms', name: 'smsgw' }),
  '/system/delProvider': () => ({ type: 'sms', name: 'nosuchprovider' }),
  '/system/testProvider': () => ({ type: 'sms', name: 'smsgw', to: '+4915123456789' }),
  '/system/deliveryLog': () => ({}),
  '/system/setRadiusClient': () => ({ name: 'vpn', address: '127.0.0.1', secret: RADIUS_SECRET, realm: 'corp' }),
  '/system/getRadiusClients': () => ({}),
  '/system/delRadiusClient': () => ({ name: 'nosuchclient' }),
  '/system/setResolver': () => ldapResolver(),
  '/system/getResolvers': () => ({}),
  '/system/getResolver': () => ({ resolver: 'ldapx' }),
  '/system/delResolver': () => ({ resolver: 'nosuchresolver' }),
  '/system/testResolver': () => ({ name: 'ldapx' }),
  '/system/setRealm': () => ({ realm: 'corp', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.localusers' }),
  '/system/getRealms': () => ({}),
  '/system/getDefaultRealm': () => ({}),
  '/system/delRealm': () => ({ realm: 'nosuchrealm' }),
  '/system/setDefaultRealm': () => ({ realm: 'corp' }),
  '/system/resolverCacheFlush': () => ({}),
};

/** A loopback gateway that answers with everything it was sent (as careless gateways do in errors). */
let gatewayUrl = 'http://127.0.0.1:9/send';
const gatewaySaw: string[] = [];
const smsProviderConfig = () => JSON.stringify({
  URL: gatewayUrl, USERNAME: 'otpd', PASSWORD: SMS_PASSWORD, RETURN_SUCCESS: 'OK',
  PARAMETER: { from: 'otpd', apikey: SMS_APIKEY }, HEADERS: { Authorization: `Bearer ${SMS_BEARER}` },
});
// 127.0.0.1 port 1: nothing listens, a connection attempt is refused at once
const ldapResolver = () => ({
  name: 'ldapx', previous_name: 'ldapx', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: 'ldap://127.0.0.1:1', LDAPBASE: 'ou=people,dc=example,dc=org',
  BINDDN: 'cn=admin,dc=example,dc=org', BINDPW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '1',
});

/** More calls for the admin walk: the other secret holders, each shown or tested once more. */
const EXTRA: [string, Form][] = [
  ['/system/getResolver', { resolver: 'sqlx' }],
  ['/system/getResolver', { resolver: 'localusers' }],
  ['/system/testResolver', { name: 'sqlx' }],
  ['/system/getProvider', { type: 'email' }],
  ['/system/getProvider', { type: 'email', name: 'managedmail' }],
  ['/system/testProvider', { type: 'email', name: 'mail', to: 'alice@example.com' }],
  ['/system/getConfig', { key: 'smtp.token' }],
  ['/system/getConfig', { key: 'SMSProviderConfig' }],
  ['/system/getConfig', { key: 'walk.password' }],
  ['/system/getRadiusClients', { name: 'vpn' }],
  ['/admin/show', {}],
  ['/admin/show', { user: 'alice', realm: 'corp' }],
  ['/admin/show', { serial: 'PW1' }],
  ['/admin/getTokenOwner', { serial: 'PW1' }],
  ['/validate/check', { user: 'alice', realm: 'corp', pass: `${HOTP_PIN}000000` }],
  ['/validate/check_s', { serial: 'SPASS1', pass: SPASS_PIN }],
  ['/validate/check_s', { serial: 'PW1', pass: `${PW_PIN}wrong` }],
  ['/admin/login', { username: 'admin', password: `${ADMIN_PASSWORD}x` }],
  ['/admin/login', { username: 'admin', password: ADMIN_PASSWORD }],
  // refused input that carries a secret in a secret field: the refusal must not quote it
  // (a secret typed into a non-secret field, a scope or a port, is not one)
  ['/system/setProvider', { type: 'sms', name: 'broken', class: 'HttpSMSProvider', timeout: '5', config: `{"URL": "http://127.0.0.1:9/", "PASSWORD": "${SMS_PASSWORD}", }` }],
  ['/system/setProvider', { type: 'sms', name: 'broken', class: 'HttpSMSProvider', timeout: '5', config: `{"PASSWORD": "${SMS_PASSWORD}"}` }],
  ['/system/setProvider', { type: 'sms', name: 'broken', class: 'HttpSMSProvider', timeout: '5', config: JSON.stringify({ URL: 'http://127.0.0.1:9/', PASSWORD: { nested: SMS_PASSWORD } }) }],
  ['/system/setConfig', { key: 'SMSProviderConfig', value: `{"PASSWORD": "${LEGACY_PASSWORD}", ` }],
  ['/system/setConfig', { key: 'broken.password', value: `${TYPED_PASSWORD}\u0001`, type: 'password' }],
  ['/system/setResolver', { name: 'sqlbad', type: 'sqlresolver', Connect: `postgresql://otpd:${SQL_PASSWORD}@`, Table: 'users', Map: '{"userid": "id"}' }],
  ['/system/setResolver', { name: 'sqlbad', type: 'sqlresolver', Connect: `postgresql://otpd:${SQL_PASSWORD}@127.0.0.1:1/users`, Table: 'users', Map: '{"userid": "id", ' }],
  ['/system/testResolver', { type: 'sqlresolver', Connect: `postgresql://otpd:${SQL_PASSWORD}@127.0.0.1:1/users`, Table: 'users', Map: '{"userid": "id", "username": "login"}', TIMEOUT: '1' }],
  ['/system/testResolver', { type: 'ldapresolver', PRESET: 'openldap', LDAPURI: 'ldap://127.0.0.1:1', LDAPBASE: 'dc=x', BINDDN: 'cn=x', BINDPW, TIMEOUT: '1' }],
  ['/system/setRadiusClient', { name: 'badnas', address: 'not-an-address', secret: RADIUS_SECRET }],
  ['/system/setRadiusClient', { name: 'badnas', address: '127.0.0.1', secret: `${RADIUS_SECRET}\u0001` }],
  ['/admin/init', { type: 'hmac', serial: 'BAD1', otpkey: `${HOTP_KEY.toString('hex')}zz`, pin: HOTP_PIN }],
  ['/admin/init', { type: 'hmac', serial: 'BAD2', otpkey: HOTP_KEY.toString('hex').slice(0, 10), pin: HOTP_PIN }],
  ['/admin/init', { type: 'pw', serial: 'BAD3', otpkey: PW_PASSWORD.repeat(30), pin: PW_PIN }],
  ['/admin/init', { type: 'hmac', serial: 'HOTP1', genkey: '1', otpkey: HOTP_KEY.toString('hex') }],
  ['/admin/set', { serial: 'HOTP1', pin: `${NEW_PIN}\u0001` }],
  ['/admin/set', { serial: 'HOTP1', pin: NEW_PIN.repeat(1000) }],
  ['/admin/assign', { serial: 'SPASS1', user: 'nobody', realm: 'corp', pin: SPASS_PIN }],
];

// ---- plumbing ----

interface Answer { status: number; body: string; headers: Record<string, unknown>; json: any }

async function call(t: TestApp, method: Method, url: string, form: Form, headers: Record<string, string> = {}): Promise<Answer> {
  const query = new URLSearchParams(form).toString();
  const res = method === 'POST'
    ? await t.app.inject({ method, url, payload: query, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } })
    : await t.app.inject({ method, url: query ? `${url}?${query}` : url, headers });
  let json: any;
  try {
    json = JSON.parse(res.body);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, body: res.body, headers: res.headers, json };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** A self-service session of alice (realm corp): the `user_selfservice` cookie value. */
async function userSession(t: TestApp): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/userservice/login', payload: new URLSearchParams({ login: 'alice', password: 'alice-dir-pw', realm: 'corp' }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const cookie = res.cookies.find((c) => c.name === 'user_selfservice')?.value;
  assert.ok(cookie, `no user session: ${res.body}`);
  return cookie;
}

async function loginSession(t: TestApp): Promise<{ cookie: string; csrf: string }> {
  const res = await t.app.inject({ method: 'POST', url: '/admin/login', payload: new URLSearchParams({ username: 'admin', password: ADMIN_PASSWORD }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(res.statusCode, 200, res.body);
  const c = Object.fromEntries(res.cookies.map((x) => [x.name, x.value]));
  return { cookie: `access_token_cookie=${c.access_token_cookie}; csrf_access_token=${c.csrf_access_token}`, csrf: c.csrf_access_token };
}

/** (url, method) pairs Fastify registered, HEAD included. */
function routeMethods(t: TestApp): { url: string; method: Method }[] {
  const out: { url: string; method: Method }[] = [];
  for (const r of t.routes) if (!isWebPage(r.url)) for (const m of r.methods) out.push({ url: r.url, method: m as Method });
  return out;
}

function assertRefused(a: Answer, code: 2001 | 2002 | 2900, where: string): void {
  assert.equal(a.status, code === 2002 ? 403 : 401, `${where}: HTTP ${a.status} ${a.body}`);
  if (a.body === '') return; // HEAD: the status is the answer
  assert.ok(a.json, `${where}: not JSON: ${a.body}`);
  assert.equal(a.json.result.status, false, `${where}: ${a.body}`);
  assert.equal(a.json.result.error.code, code, `${where}: ${a.body}`);
  assert.equal(a.json.result.value, undefined, `${where}: a refusal carries no value`);
  assert.equal(a.json.jsonrpc, '2.0802', where);
  assert.doesNotMatch(a.body, STACK, where);
}

describe('route walk: authentication, CSRF, secrets, malformed input', () => {
  const clock = new FakeClock();
  const logLines: string[] = [];
  let t: TestApp;
  let tmp: string;
  let expiringKey: string;
  let revokedKey: string;
  let endedSession: { cookie: string; csrf: string };
  let gateway: Server;

  before(async () => {
    gateway = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const echo = `ERROR you sent ${req.method} ${req.url} ${JSON.stringify(req.headers)} ${body}`;
        gatewaySaw.push(echo);
        res.writeHead(200, { 'content-type': 'text/plain', 'x-echo': encodeURIComponent(echo).slice(0, 2000) }).end(echo);
      });
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/send`;
    const logger = pino({ level: 'trace' }, { write: (s: string) => void logLines.push(s) });
    t = await startTestApp({ clock, logger });
    await t.app.ready();
    plant('API key of the walk', t.apiKey);
    plant('directory passwords', 'alice-dir-pw', 'bob-dir-pw');
    tmp = mkdtempSync(join(tmpdir(), 'otpd-route-walk-'));
    const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw]).toString().trim();
    writeFileSync(join(tmp, 'users'), [
      `alice:${crypt('alice-dir-pw')}:1000:1000:Alice A,,,,alice@example.com:/:/bin/sh`,
      `bob:${crypt('bob-dir-pw')}:1001:1001:Bob B,,,,bob@example.com:/:/bin/sh`,
    ].join('\n'));

    // credentials that must be refused
    expiringKey = await t.services.admins.createApiKey('admin', 'expiring', { expiresAt: clock.now() + 60_000 });
    const revoked = await t.services.admins.issueApiKey('admin', 'revoked');
    revokedKey = revoked.key;
    // each worked before it was revoked, expired or ended: the walk refuses them for that reason
    assert.equal((await t.post('/admin/show', {}, bearer(revokedKey))).json.result.status, true);
    assert.equal((await t.post('/admin/show', {}, bearer(expiringKey))).json.result.status, true);
    await t.services.admins.revokeApiKey(revoked.id);
    spareKeyId = (await t.services.admins.issueApiKey('admin', 'walk-spare')).id;
    endedSession = await loginSession(t);
    assert.equal((await t.post('/admin/show', {}, { cookie: endedSession.cookie, 'x-csrf-token': endedSession.csrf })).json.result.status, true);
    await t.app.inject({ method: 'POST', url: '/admin/logout', headers: { cookie: endedSession.cookie, 'x-csrf-token': endedSession.csrf } });
    clock.advance(120_000); // expiringKey is now expired
    plant('expired API key', expiringKey);
    plant('revoked API key', revokedKey);

    // the secrets the system holds, made as an administrator would
    const setup: [string, Form][] = [
      ['/system/setResolver', { name: 'localusers', type: 'passwdresolver', fileName: join(tmp, 'users') }],
      ['/system/setResolver', { ...ldapResolver(), previous_name: '' }],
      ['/system/setResolver', { name: 'sqlx', type: 'sqlresolver', Connect: `postgresql://otpd:${SQL_PASSWORD}@127.0.0.1:1/users`, Table: 'users', Map: '{"userid": "id", "username": "login"}', TIMEOUT: '1' }],
      ['/system/setRealm', { realm: 'corp', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.localusers' }],
      ['/admin/init', { type: 'hmac', serial: 'HOTP1', otpkey: HOTP_KEY.toString('hex'), pin: HOTP_PIN, user: 'alice', realm: 'corp' }],
      ['/admin/init', { type: 'hmac', serial: 'SPARE1', otpkey: SPARE_KEY.toString('hex'), pin: HOTP_PIN }],
      ['/admin/init', { type: 'hmac', serial: 'SPARE2', otpkey: SPARE_KEY.toString('hex'), pin: HOTP_PIN }],
      ['/admin/init', { type: 'spass', serial: 'SPASS1', pin: SPASS_PIN }],
      ['/admin/init', { type: 'pw', serial: 'PW1', otpkey: PW_PASSWORD, pin: PW_PIN }],
      ['/admin/init', { type: 'hmac', serial: 'LOST1', otpkey: SPARE_KEY.toString('hex'), pin: HOTP_PIN, user: 'alice', realm: 'corp' }],
      ['/system/setProvider', { type: 'sms', name: 'smsgw', class: 'HttpSMSProvider', timeout: '5', config: smsProviderConfig(), default: 'true' }],
      ['/system/setProvider', { type: 'email', name: 'mail', class: 'SMTPEmailProvider', timeout: '5', config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: 1, SMTP_USER: 'mailer', SMTP_PASSWORD: MAIL_PASSWORD, EMAIL_FROM: 'otp@example.com' }) }],
      ['/system/setProvider', { type: 'email', name: 'managedmail', class: 'SMTPEmailProvider', timeout: '5', config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PASSWORD: MAIL_PASSWORD }), managed: MANAGED_PASSWORD }],
      ['/system/setConfig', { key: 'smtp.token', value: TYPED_PASSWORD, type: 'password' }],
      ['/system/setConfig', { SMSProvider: 'HttpSMSProvider', SMSProviderConfig: JSON.stringify({ URL: 'http://127.0.0.1:9/legacy', PASSWORD: LEGACY_PASSWORD }) }],
      ['/system/setRadiusClient', { name: 'vpn', address: '127.0.0.1', secret: RADIUS_SECRET, realm: 'corp' }],
    ];
    for (const [path, form] of setup) {
      const res = await t.admin(path, form);
      assert.equal(res.json?.result?.status, true, `${path}: ${res.body}`);
      assertNoSecret(res.body, `setup ${path}`);
    }
  });
  after(async () => {
    await t?.close();
    await new Promise((resolve) => gateway?.close(resolve));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('Fastify reports every route, and each one is classified', () => {
    const all = [...new Set(t.routes.map((r) => r.url))];
    for (const url of Object.keys(WEB_PAGES)) assert.ok(all.includes(url), `WEB_PAGES lists ${url}, which no longer exists`);
    const urls = all.filter((u) => !isWebPage(u));
    assert.ok(urls.length >= 60, `only ${urls.length} routes seen: the onRoute hook missed some`);
    for (const url of urls) {
      assert.ok(url in PARAMS, `route ${url} is not classified: add it to PARAMS (and to PUBLIC only if it must answer without credentials), or to WEB_PAGES for an HTML page`);
    }
    for (const url of Object.keys(PARAMS)) assert.ok(urls.includes(url), `PARAMS lists ${url}, which no longer exists`);
    for (const url of PUBLIC) assert.ok(urls.includes(url), `PUBLIC lists ${url}, which no longer exists`);
    // HEAD is walked too: Fastify answers it for every GET route
    for (const url of urls) {
      const methods = t.routes.filter((r) => r.url === url).flatMap((r) => r.methods);
      if (methods.includes('GET')) assert.ok(methods.includes('HEAD'), `${url}: GET without HEAD`);
      for (const m of methods) assert.ok(t.app.hasRoute({ url, method: m as Method }), `${m} ${url}`);
    }
    // the admin areas are never public
    for (const url of PUBLIC) if (url !== '/admin/login') assert.doesNotMatch(url, /^\/(admin|system|audit)\/|^\/metrics$/);
  });

  test('public routes answer without credentials; no other route does, for any method or credential failure', async () => {
    const session = await loginSession(t);
    const other = await loginSession(t);
    for (const { url, method } of routeMethods(t)) {
      const form = PARAMS[url]();
      const where = `${method} ${url}`;
      const anon = await call(t, method, url, form);
      if (PUBLIC.has(url)) {
        assert.notEqual(anon.status, 401, where);
        assert.notEqual(anon.json?.result?.error?.code, 2001, where);
        assert.ok(anon.status < 500, `${where}: ${anon.status} ${anon.body}`);
        continue;
      }
      if (USER_ROUTES.has(url)) {
        // no admin credential is a user session, valid or not, with or without CSRF token
        for (const [name, h] of [['no credentials', {}], ['the API key', bearer(t.apiKey)], ['a revoked API key', bearer(revokedKey)],
          ['an admin session', { cookie: session.cookie, 'x-csrf-token': session.csrf }], ['an admin session without CSRF token', { cookie: session.cookie }],
          ['an ended admin session', { cookie: endedSession.cookie, 'x-csrf-token': endedSession.csrf }]] as const) {
          assertRefused(await call(t, method, url, form, h), 2900, `${where} with ${name}`);
        }
        const user = await userSession(t);
        assert.notEqual((await call(t, method, url, { ...form, session: user }, { cookie: `user_selfservice=${user}` })).status, 401, `${where} with a user session`);
        assertRefused(await call(t, method, url, form, { cookie: `user_selfservice=${user}` }), 2900, `${where} with a user session and no session parameter`);
        assertRefused(await call(t, method, url, { ...form, session: `${user}x` }, { cookie: `user_selfservice=${user}` }), 2900, `${where} with a user session and a wrong session parameter`);
        assertRefused(await call(t, method, url, { ...form, session: user }, {}), 2900, `${where} with the session parameter and no cookie`);
        continue;
      }
      assertRefused(anon, 2001, `${where} without credentials`);
      assertRefused(await call(t, method, url, form, bearer(revokedKey)), 2001, `${where} with a revoked API key`);
      assertRefused(await call(t, method, url, form, bearer(expiringKey)), 2001, `${where} with an expired API key`);
      assertRefused(await call(t, method, url, form, bearer('otpd_AAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')), 2001, `${where} with an unknown API key`);
      assertRefused(await call(t, method, url, form, { authorization: 'Basic YWRtaW46YWRtaW4tcGFzc3dvcmQtMQ==' }), 2001, `${where} with HTTP Basic`);
      assertRefused(await call(t, method, url, form, { cookie: endedSession.cookie, 'x-csrf-token': endedSession.csrf }), 2001, `${where} with an ended session`);
      // the CSRF token is needed for every session call (LinOTP 3 asks it for all), state-changing or not
      assertRefused(await call(t, method, url, form, { cookie: session.cookie }), 2002, `${where} with a session and no X-CSRF-TOKEN`);
      assertRefused(await call(t, method, url, form, { cookie: session.cookie, 'x-csrf-token': `${session.csrf}x` }), 2002, `${where} with a session and a wrong X-CSRF-TOKEN`);
      assertRefused(await call(t, method, url, form, { cookie: session.cookie, 'x-csrf-token': other.csrf }), 2002, `${where} with another session's CSRF token`);
      if (method === 'POST') assertRefused(await call(t, method, url, { ...form, csrf_token: `${session.csrf}x` }, { cookie: session.cookie }), 2002, `${where} with a session and a wrong csrf_token field`);
    }
  });

  test('management pages: without a session to the login page, a POST without the CSRF token changes nothing, no page shows a secret', async () => {
    const pages = t.routes.filter((r) => WEB_PAGES[r.url] === 'session');
    assert.ok(pages.length >= 2);
    const session = await loginSession(t);
    for (const { url, methods } of pages) {
      for (const method of methods as Method[]) {
        const where = `${method} ${url}`;
        for (const [name, headers] of [['no session', {}], ['an ended session', { cookie: endedSession.cookie }], ['an API key', bearer(t.apiKey)]] as const) {
          const a = await call(t, method, pageUrl(url), method === 'POST' ? { csrf_token: session.csrf } : {}, headers);
          assert.equal(a.status, 303, `${where} with ${name}: ${a.status} ${a.body}`);
          assert.match(String(a.headers.location ?? ''), /^\/manage\/login/, `${where} with ${name}`);
        }
        if (method === 'POST') {
          for (const csrf of [undefined, `${session.csrf}x`]) {
            const a = await call(t, method, pageUrl(url), csrf === undefined ? {} : { csrf_token: csrf }, { cookie: session.cookie });
            assert.equal(a.status, 403, `${where} with a session and ${csrf ? 'a wrong' : 'no'} csrf_token: ${a.body}`);
            assertNoSecret(a.body, where);
          }
          // the session survived the refused posts (the logout form among them)
          assert.equal((await call(t, 'GET', '/manage/', {}, { cookie: session.cookie })).status, 200);
        } else {
          const a = await call(t, method, pageUrl(url), {}, { cookie: session.cookie });
          // a page of one object called with its placeholder (`/manage/realms/:realm`) names no object: 404 is its answer
          assert.ok(a.status === 200 || (pageUrl(url).includes('/:') && a.status === 404), `${where} with a session: ${a.status} ${a.body}`);
          assertNoSecret(a.body, where);
          assert.doesNotMatch(a.body, STACK, where);
        }
      }
    }
  });

  test('portal pages: without a user session to the portal login, a POST without the portal CSRF token changes nothing; admin credentials are no user session', async () => {
    const pages = t.routes.filter((r) => WEB_PAGES[r.url] === 'portal');
    assert.ok(pages.length >= 5);
    const admin = await loginSession(t);
    const user = await userSession(t);
    for (const { url, methods } of pages) {
      for (const method of methods as Method[]) {
        const where = `${method} ${url}`;
        for (const [name, headers] of [['no session', {}], ['an admin session', { cookie: admin.cookie }], ['an API key', bearer(t.apiKey)],
          ['an unknown user session', { cookie: `user_selfservice=${'A'.repeat(43)}` }]] as const) {
          const a = await call(t, method, pageUrl(url), method === 'POST' ? { csrf_token: admin.csrf } : {}, headers);
          assert.equal(a.status, 303, `${where} with ${name}: ${a.status} ${a.body}`);
          assert.match(String(a.headers.location ?? ''), /^\/selfservice\/login/, `${where} with ${name}`);
        }
        if (method === 'POST') {
          // the cookie value itself is no CSRF token, nor is an admin's
          for (const csrf of [undefined, user, admin.csrf]) {
            const a = await call(t, method, pageUrl(url), csrf === undefined ? {} : { csrf_token: csrf }, { cookie: `user_selfservice=${user}` });
            assert.equal(a.status, 403, `${where} with a user session and ${csrf ? 'a wrong' : 'no'} csrf_token: ${a.body}`);
            assertNoSecret(a.body, where);
          }
          assert.equal((await call(t, 'GET', '/selfservice/', {}, { cookie: `user_selfservice=${user}` })).status, 200);
        } else {
          const a = await call(t, method, pageUrl(url), {}, { cookie: `user_selfservice=${user}` });
          assert.equal(a.status, 200, `${where} with a user session: ${a.status} ${a.body}`);
          assertNoSecret(a.body, where);
          assert.doesNotMatch(a.body, STACK, where);
          assert.ok(!a.body.includes(user), `${where} shows the session cookie`);
        }
      }
    }
  });

  test('spelling an admin path differently (encoded, case, slashes, dot segments) never reaches it unauthenticated', async () => {
    const variants = ['/admin/%73how', '/%61dmin/show', '/ADMIN/SHOW', '/admin/show/', '//admin/show', '/admin//show', '/validate/../admin/show', '/validate/%2e%2e/admin/show',
      '/admin/show;jsessionid=1', '/admin/show%00', '/admin/show%20', '/auth/../admin/show', '/admin/./show', '/system/getConfig%3F', '/Metrics', '/metrics/'];
    for (const url of variants) {
      for (const method of ['GET', 'POST', 'HEAD'] as const) {
        const res = await t.app.inject({ method, url, headers: method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}, payload: method === 'POST' ? 'serial=HOTP1' : undefined });
        assert.ok([401, 404, 400].includes(res.statusCode), `${method} ${url}: HTTP ${res.statusCode} ${res.body}`);
        if (res.body) assert.doesNotMatch(res.body, /"value"|LinOtp\.Token|HOTP1/, `${method} ${url} served something: ${res.body}`);
      }
    }
  });

  test('the refusal comes before any parameter is looked at: real, unknown and malformed parameters get the same answer', async () => {
    const garbage: Form = { serial: 'NO-SUCH-SERIAL', 'bad name!': 'x', value: 'a\u0001b' };
    for (const { url, method } of routeMethods(t)) {
      if (PUBLIC.has(url)) continue;
      const where = `${method} ${url}`;
      const real = await call(t, method, url, PARAMS[url]());
      const bogus = await call(t, method, url, garbage);
      const none = await call(t, method, url, {});
      const huge = await call(t, method, url, { serial: 'x'.repeat(9000) });
      for (const [name, a] of [['unknown/malformed', bogus], ['no', none], ['oversized', huge]] as const) {
        assert.equal(a.status, real.status, `${where} with ${name} parameters: ${a.body}`);
        assert.equal(a.body, real.body, `${where} with ${name} parameters answers differently: ${a.body}`);
      }
      if (method === 'POST') {
        // bodies Fastify itself refuses (before the handler runs) are answered as unauthenticated too
        for (const [name, payload, type] of [
          ['a JSON body of objects', JSON.stringify({ serial: { $ne: '' }, list: [1, {}] }), 'application/json'],
          ['broken JSON', '{"serial": ', 'application/json'],
          ['a foreign content type', '<serial>HOTP1</serial>', 'application/xml'],
          ['a body over the limit', `serial=${'x'.repeat(300 * 1024)}`, 'application/x-www-form-urlencoded'],
        ] as const) {
          const res: { statusCode: number; body: string } = await t.app.inject({ method, url, payload, headers: { 'content-type': type } });
          assert.equal(res.statusCode, 401, `${where} with ${name}: ${res.body}`);
          assert.equal(res.body, real.body, `${where} with ${name}`);
          const bad: { body: string } = await t.app.inject({ method, url, payload, headers: { 'content-type': type, authorization: `Bearer ${revokedKey}` } });
          assert.equal(bad.body, real.body, `${where} with ${name} and a revoked key`);
        }
        // a session without CSRF token learns nothing from its body either
        const session = await loginSession(t);
        const csrfLess = await t.app.inject({ method, url, payload: '{"serial": ', headers: { 'content-type': 'application/json', cookie: session.cookie } });
        const [status, code] = USER_ROUTES.has(url) ? [401, 2900] : [403, 2002];
        assert.equal(csrfLess.statusCode, status, `${where} with broken JSON and a session without CSRF token: ${csrfLess.body}`);
        assert.equal(JSON.parse(csrfLess.body).result.error.code, code);
        if (USER_ROUTES.has(url)) {
          const user = await userSession(t);
          const noParam = await t.app.inject({ method, url, payload: `{"session": "${user}", `, headers: { 'content-type': 'application/json', cookie: `user_selfservice=${user}` } });
          assert.equal(noParam.statusCode, 401, `${where} with broken JSON and a user session cookie: ${noParam.body}`);
          assert.equal(noParam.body, real.body);
        }
      }
    }
    // concretely: an unauthenticated caller cannot tell an existing serial from a missing one
    const exists = await call(t, 'POST', '/admin/getTokenOwner', { serial: 'HOTP1' });
    const missing = await call(t, 'POST', '/admin/getTokenOwner', { serial: 'NOPE99' });
    assert.equal(exists.body, missing.body);
  });

  test('a concurrent burst of unauthenticated calls to every admin route: all refused, none served', async () => {
    const targets = routeMethods(t).filter((r) => !PUBLIC.has(r.url));
    const answers = await Promise.all(targets.flatMap(({ url, method }) => [
      call(t, method, url, PARAMS[url]()).then((a) => ({ a, where: `${method} ${url} anonymous` })),
      call(t, method, url, PARAMS[url](), bearer(revokedKey)).then((a) => ({ a, where: `${method} ${url} revoked key` })),
    ]));
    for (const { a, where } of answers) assertRefused(a, USER_ROUTES.has(where.split(' ')[1]) ? 2900 : 2001, where);
    // nothing was changed by them: the spare API key is still active, the throwaway token still there
    const keys = await t.services.admins.listApiKeys('admin');
    assert.equal(keys.find((k) => k.id === spareKeyId)?.state, 'active');
    assert.ok(await t.services.tokens.repository.bySerial('SPARE2'));
  });

  test('no route echoes a secret, as the admin, by GET, POST and HEAD; nor does the audit or the log', async () => {
    // the documented exceptions: a generated seed's otpauth URL, once, in the /admin/init answer
    const gen = await t.admin('/admin/init', { type: 'hmac', serial: 'GEN1', genkey: '1', pin: HOTP_PIN });
    assert.equal(gen.json.result.status, true, gen.body);
    const url = new URL(gen.json.detail.googleurl.value);
    assert.equal(url.protocol, 'otpauth:');
    const seed = url.searchParams.get('secret')!;
    assert.match(seed, /^[A-Z2-7]{32,}$/);
    assert.ok(gen.json.detail.googleurl.img.startsWith('<img'), 'the QR code is shown with it');
    const seedBytes = base32Decode(seed);
    assertNoSecret(gen.body, '/admin/init (genkey)'); // only the generated seed, none of the others
    plant('generated seed', ...keyForms(seedBytes));
    // …and a new API key, once, in the /admin/apikey/create answer (from a session only)
    const session = await loginSession(t);
    const made = await call(t, 'POST', '/admin/apikey/create', { label: 'shown-once' }, { cookie: session.cookie, 'x-csrf-token': session.csrf });
    assert.equal(made.json.result.status, true, made.body);
    assertNoSecret(made.body, '/admin/apikey/create');
    plant('API key made over HTTP', made.json.result.value.key);
    const imgSecretFree = gen.json.detail.googleurl.img;
    // the QR code encodes the URL; it is never shown again either
    plant('QR code of the enrollment URL', imgSecretFree.slice(imgSecretFree.indexOf('base64,') + 7, imgSecretFree.indexOf('base64,') + 87));

    const walk: { url: string; method: Method; by: 'API key' | 'session'; form?: Form }[] = [];
    for (const r of routeMethods(t)) walk.push({ ...r, by: 'API key' });
    for (const [url, form] of EXTRA) walk.push({ url, method: 'POST', by: 'API key', form });
    // and once more through a session, the way the web UI calls (a new one after each logout)
    for (const r of routeMethods(t)) walk.push({ ...r, by: 'session' });
    // the self-service routes once more as the user, the only credential they take
    const user = await userSession(t);
    for (const r of routeMethods(t)) if (USER_ROUTES.has(r.url)) {
      const a = await call(t, r.method, r.url, { ...PARAMS[r.url](), session: user }, { cookie: `user_selfservice=${user}` });
      const where = `${r.method} ${r.url} (user session)`;
      assert.equal(a.status, 200, `${where}: ${a.body}`);
      assert.doesNotMatch(a.body, STACK, where);
      assertNoSecret(a.body, `${where} body`);
      assertNoSecret(JSON.stringify(a.headers), `${where} headers`);
    }
    let served = 0;
    let current = session;
    for (const { url, method, by, form } of walk) {
      const where = `${method} ${url} (${by})`;
      const headers = by === 'API key' ? bearer(t.apiKey) : { cookie: current.cookie, 'x-csrf-token': current.csrf };
      const a = await call(t, method, url, form ?? PARAMS[url](), headers);
      if (by === 'session' && url === '/admin/logout') current = await loginSession(t);
      assert.ok(a.status < 500, `${where}: HTTP ${a.status} ${a.body}`);
      assert.notEqual(a.json?.result?.error?.code, 2001, `${where}: ${a.body}`);
      assert.notEqual(a.json?.result?.error?.code, 2002, `${where}: ${a.body}`);
      assert.doesNotMatch(a.body, STACK, where);
      assertNoSecret(a.body, `${where} body`);
      assertNoSecret(JSON.stringify(a.headers), `${where} headers`);
      if (a.json?.result?.status === true || a.status === 200) served += 1;
    }
    // the gateway was really called with the secrets, and answered them back
    assert.ok(gatewaySaw.some((e) => e.includes(SMS_BASIC) && e.includes(SMS_APIKEY)), `the gateway saw the provider secrets: ${gatewaySaw[0]}`);
    assert.ok(served > walk.length / 2, `only ${served} of ${walk.length} calls were served: the walk tests too little`);

    // the seed and key shown once are not shown again
    const show = await t.admin('/admin/show', { serial: 'GEN1' });
    assert.equal(show.json.result.value.data.length, 1, show.body);
    assert.ok(!show.body.includes('otpauth'), '/admin/show shows no enrollment URL');

    // the audit: every column of every row, and the audit API
    const rows = await t.services.db.kysely.selectFrom('audit').selectAll().execute();
    assert.ok(rows.length > 100, `${rows.length} audit rows`);
    assertNoSecret(JSON.stringify(rows), 'audit table');
    assertNoSecret((await t.admin('/audit/search', { rp: '1000', outform: 'csv' })).body, '/audit/search csv');
    // the log, at trace level
    assert.ok(logLines.length > 0, 'the log captured lines');
    assertNoSecret(logLines.join('\n'), 'log');
    assert.doesNotMatch(logLines.join('\n'), /"stack"/);
  });

  test('malformed input on every route: never a 500, never a stack trace, a LinOTP error envelope', async () => {
    const auths: [string, Record<string, string>][] = [['anonymous', {}], ['admin', bearer(t.apiKey)]];
    const bad: { name: string; inject: (url: string, method: Method, h: Record<string, string>) => Promise<{ statusCode: number; body: string }> }[] = [
      { name: 'garbage parameter names', inject: (url, method, h) => rawCall(url, method, h, 'a%00b=1&%FF%FE=2&x[=3&__proto__=4&constructor[prototype]=5') },
      { name: 'a huge parameter', inject: (url, method, h) => rawCall(url, method, h, `serial=${'A'.repeat(20_000)}`) },
      { name: 'many parameters', inject: (url, method, h) => rawCall(url, method, h, Array.from({ length: 400 }, (_, i) => `p${i}=${i}`).join('&')) },
      { name: 'a JSON body of objects', inject: (url, method, h) => t.app.inject({ method, url, payload: '{"serial": {"$gt": ""}, "pass": [1, {"a": null}], "__proto__": {"x": 1}}', headers: { ...h, 'content-type': 'application/json' } }) },
      { name: 'a JSON array body', inject: (url, method, h) => t.app.inject({ method, url, payload: '[1,2,3]', headers: { ...h, 'content-type': 'application/json' } }) },
      { name: 'broken JSON', inject: (url, method, h) => t.app.inject({ method, url, payload: `{"serial": "HOTP1", "pass": "${HOTP_PIN}${hotp(HOTP_KEY, 9)}", "otpkey": "${HOTP_KEY.toString('hex')}", `, headers: { ...h, 'content-type': 'application/json' } }) },
      { name: 'a foreign content type', inject: (url, method, h) => t.app.inject({ method, url, payload: '<x>1</x>', headers: { ...h, 'content-type': 'application/xml' } }) },
      { name: 'a body over the limit', inject: (url, method, h) => t.app.inject({ method, url, payload: `a=${'b'.repeat(300 * 1024)}`, headers: { ...h, 'content-type': 'application/x-www-form-urlencoded' } }) },
    ];
    for (const { url, method } of routeMethods(t)) {
      if (url === '/admin/login') continue; // has its own throttle test; a burst of bad logins here would throttle the walk
      for (const [who, h] of auths) {
        for (const b of bad) {
          const where = `${method} ${url} ${who} with ${b.name}`;
          const res = await b.inject(url, method, h);
          assert.ok(res.statusCode < 500, `${where}: HTTP ${res.statusCode} ${res.body}`);
          assert.doesNotMatch(res.body, STACK, where);
          assertNoSecret(res.body, where);
          // an error is always LinOTP's envelope; a served non-JSON answer (metrics, the auth page) is fine
          const type = String((res as { headers?: Record<string, unknown> }).headers?.['content-type'] ?? '');
          if (method === 'HEAD' || res.body === '' || (res.statusCode < 400 && !type.startsWith('application/json'))) continue;
          assert.match(type, /^application\/json/, `${where}: an error of type ${type}`);
          let json: any;
          assert.doesNotThrow(() => (json = JSON.parse(res.body)), `${where}: not JSON: ${res.body.slice(0, 200)}`);
          assert.equal(typeof json, 'object', where);
        }
      }
    }
    assert.doesNotMatch(logLines.join('\n'), /"stack"/, 'no stack in the log either');
    assertNoSecret(logLines.join('\n'), 'log');
    assertNoSecret(JSON.stringify(await t.services.db.kysely.selectFrom('audit').selectAll().execute()), 'audit table');

    function rawCall(url: string, method: Method, h: Record<string, string>, encoded: string) {
      return method === 'POST'
        ? t.app.inject({ method, url, payload: encoded, headers: { ...h, 'content-type': 'application/x-www-form-urlencoded' } })
        : t.app.inject({ method, url: `${url}?${encoded}`, headers: h });
    }
  });
});


test('fault injection: with the database gone, admin routes fail closed (never served), without a stack in the answer; the log holds the error, no query-string secret', async () => {
  const lines: string[] = [];
  const t = await startTestApp({ logger: pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) }) });
  try {
    await t.app.ready();
    await t.services.db.kysely.destroy();
    const query = `serial=HOTP1&pin=${HOTP_PIN}&otpkey=${HOTP_KEY.toString('hex')}`;
    const answers = await Promise.all([
      t.app.inject({ method: 'GET', url: `/admin/show?${query}`, headers: bearer(t.apiKey) }),
      t.app.inject({ method: 'POST', url: `/admin/set?${query}`, payload: '{"pin": ', headers: { ...bearer(t.apiKey), 'content-type': 'application/json' } }),
      t.app.inject({ method: 'POST', url: `/system/setConfig?${query}`, payload: '<x/>', headers: { ...bearer(t.apiKey), 'content-type': 'application/xml' } }),
      t.app.inject({ method: 'GET', url: `/admin/show?${query}`, headers: { cookie: 'access_token_cookie=abc; csrf_access_token=def', 'x-csrf-token': 'def' } }),
    ]);
    for (const a of answers) {
      // as every internal failure of an API call: LinOTP's HTTP 200 with ERR-311
      assert.equal(a.statusCode, 200, a.body);
      const body = JSON.parse(a.body);
      assert.equal(body.result.status, false);
      assert.equal(body.result.error.code, -311, a.body);
      assert.equal(body.result.value, undefined);
      assert.doesNotMatch(a.body, STACK);
    }
    assert.ok(lines.length > 0);
    const log = lines.join('\n');
    for (const secret of [HOTP_PIN, HOTP_KEY.toString('hex')]) assert.ok(!log.includes(secret), `the log holds ${secret}: ${log}`);
    // the stack stays out of the answers (above); the maintainer's log has the error itself
    const failures = lines.map((l) => JSON.parse(l) as { level: number; err?: { message?: string; stack?: string } }).filter((l) => l.level >= 50);
    assert.ok(failures.length > 0, 'the failures are logged as errors');
    for (const f of failures) {
      assert.match(f.err?.message ?? '', /destroyed/, JSON.stringify(f));
      assert.match(f.err?.stack ?? '', /\n\s+at /, 'as an error object with its stack');
    }
  } finally {
    await t.close().catch(() => undefined);
  }
});
