/**
 * What both HTTP fuzz runs set up and share, apart from the transport: the objects that hold
 * the planted secrets (made through the admin API), the routes' credentials, the discovery of
 * each route's parameter names, the order of the walk, and the loop over the routes.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Params } from '../../src/api/params.ts';
import {
  ADMIN_PASSWORD, ALICE_PASSWORD, BINDPW, BOB_PASSWORD, HOTP_KEY, HOTP_PIN, HotpCounter, PW_PASSWORD, PW_PIN, RADIUS_SECRET, SMS_PASSWORD, SPARE_KEY, SPASS_PIN,
  Secrets, formEncode, makeRequest, plausible, problemWith, type Answer, type FuzzRequest, type Rnd, type Target, type Value,
} from './fuzz-kit.ts';

export { ADMIN_PASSWORD };

type Form = Record<string, string>;

/** Writes a passwd-format user file with alice and bob (sha512-crypt, as the flat-file store reads it). */
export function writeUsers(dir: string): string {
  const file = join(dir, 'fuzz-users');
  const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw]).toString().trim();
  writeFileSync(file, [
    `alice:${crypt(ALICE_PASSWORD)}:1000:1000:Alice A,,,+4915123456789,alice@example.com:/:/bin/sh`,
    `bob:${crypt(BOB_PASSWORD)}:1001:1001:Bob B,,,,bob@example.com:/:/bin/sh`,
  ].join('\n'));
  return file;
}

/** The admin calls that make the secret-holding objects (each must answer status true). */
export function setupCalls(usersFile: string, gatewayUrl: string): [string, Form][] {
  const star = (scope: string): [string, Form] => ['/system/setPolicy', { name: `fuzzroot_${scope}`, scope, action: '*', user: 'admin', realm: '*', client: '' }];
  return [
    // admin policies are additive: whatever the fuzz makes in these scopes, `admin` keeps every right
    star('admin'), star('system'), star('audit'),
    ['/system/setResolver', { name: 'localusers', type: 'passwdresolver', fileName: usersFile }],
    // 127.0.0.1 port 1: nothing listens, a connection is refused at once
    ['/system/setResolver', { name: 'ldapx', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: 'ldap://127.0.0.1:1', LDAPBASE: 'ou=people,dc=example,dc=org', BINDDN: 'cn=admin,dc=example,dc=org', BINDPW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '1' }],
    ['/system/setRealm', { realm: 'corp', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.localusers' }],
    ['/system/setDefaultRealm', { realm: 'corp' }],
    ['/admin/init', { type: 'hmac', serial: 'HOTP1', otpkey: HOTP_KEY.toString('hex'), pin: HOTP_PIN, user: 'alice', realm: 'corp' }],
    ['/admin/init', { type: 'hmac', serial: 'SPARE1', otpkey: SPARE_KEY.toString('hex'), pin: HOTP_PIN }],
    ['/admin/init', { type: 'spass', serial: 'SPASS1', pin: SPASS_PIN }],
    ['/admin/init', { type: 'pw', serial: 'PW1', otpkey: PW_PASSWORD, pin: PW_PIN }],
    ['/system/setProvider', { type: 'sms', name: 'smsgw', class: 'HttpSMSProvider', timeout: '2', default: 'true', config: JSON.stringify({ URL: `${gatewayUrl}/send`, USERNAME: 'otpd', PASSWORD: SMS_PASSWORD, RETURN_SUCCESS: 'OK' }) }],
    ['/system/setRadiusClient', { name: 'vpn', address: '127.0.0.1', secret: RADIUS_SECRET, realm: 'corp' }],
  ];
}

/**
 * The setup calls the walk's logins stand on (admin policies, the user stores, realm corp as
 * the default): the fuzz's own plausible values delete them (`/system/delRealm realm=corp`
 * in discovery already), so they are sent again when a login is refused. Each is idempotent.
 */
export const standingCalls = (calls: [string, Form][]): [string, Form][] =>
  calls.filter(([path]) => ['/system/setPolicy', '/system/setResolver', '/system/setRealm', '/system/setDefaultRealm'].includes(path));

/** Parameters whose values are secrets: a refusal of a bad value must not quote it. */
export const SECRET_NAMES: ReadonlySet<string> = new Set(['pass', 'password', 'pin', 'userpin', 'otpkey', 'BINDPW', 'secret', 'otp', 'otp1', 'otp2']);

export type RouteKind = 'public' | 'admin' | 'user' | 'manage' | 'portal';

export function kindOf(url: string): RouteKind {
  if (url.startsWith('/manage')) return url === '/manage' || url === '/manage/login' || url.startsWith('/manage/assets') ? 'public' : 'manage';
  if (url.startsWith('/selfservice')) return ['/selfservice', '/selfservice/login', '/selfservice/login/second'].includes(url) || url.startsWith('/selfservice/assets') ? 'public' : 'portal';
  if (url.startsWith('/userservice/')) return 'user';
  if (url === '/admin/login') return 'public';
  if (/^\/(admin|system|audit)\//.test(url) || url === '/metrics') return 'admin';
  return 'public';
}

/** Path parameters of page routes filled in with objects the setup made. */
export const fillPath = (url: string) => url
  .replace(':serial', 'HOTP1').replace(':realm', 'corp').replace(':login', 'alice').replace(':name', 'fuzzobj')
  .replace(':type', 'sms').replace(':class', 'HttpSMSProvider').replace(':id', '999999').replace('*', 'fuzz.css');

/**
 * Walk order: whatever ends a session or counts failed logins comes last (the login throttle
 * would otherwise lock the walk's own sessions out), logins at the very end.
 */
export function walkOrder(targets: Target[]): Target[] {
  const rank = (t: Target) => /login/.test(t.route) ? 2 : /logout/.test(t.route) ? 1 : 0;
  return [...targets].sort((a, b) => rank(a) - rank(b));
}

/**
 * The parameter names each route reads, found by watching `Params` while each route is called
 * with what it has asked for so far (every accessor records its key); a few rounds reach the
 * names behind the first required one. Routes that do not use `Params` (the pages read their
 * form) get the names of a page form.
 */
export async function discoverNames<A>(targets: Target[], prepare: (t: Target) => Promise<A>, send: (t: Target, form: Record<string, Value>, auth: A) => Promise<unknown>, otp: () => string): Promise<Map<string, string[]>> {
  const proto = Params.prototype as unknown as Record<string, (key: string, ...rest: unknown[]) => unknown>;
  let current: Set<string> | undefined;
  const originals = new Map<string, (key: string, ...rest: unknown[]) => unknown>();
  for (const m of ['get', 'has', 'require', 'list', 'int', 'bool', 'getCaseInsensitive']) {
    const original = proto[m];
    originals.set(m, original);
    proto[m] = function (this: unknown, key: string, ...rest: unknown[]) {
      current?.add(key);
      return original.call(this, key, ...rest);
    };
  }
  const names = new Map<string, string[]>();
  try {
    for (const t of walkOrder(targets)) {
      const seen = new Set<string>();
      for (let round = 0; round < 5; round++) {
        const before = seen.size;
        const form = Object.fromEntries([...seen].map((n) => [n, plausible(n, otp)]));
        const auth = await prepare(t);
        current = seen;
        await send(t, form, auth);
        current = undefined;
        if (seen.size === before) break;
      }
      names.set(t.route, seen.size ? [...seen] : ['serial', 'user', 'realm', 'description', 'pin', 'otp', 'name', 'value']);
    }
  } finally {
    for (const [m, f] of originals) proto[m] = f;
  }
  return names;
}

export interface Credentials {
  apiKey: string;
  /** Admin session cookie header and its CSRF token. */
  admin: { cookie: string; csrf: string };
  /** The self-service session cookie value and the portal's CSRF token. */
  user: { session: string; csrf: string };
}

/** Headers and extra fields that get a fuzz request of this kind past the credential check. */
export function authFor(kind: RouteKind, c: Credentials): { headers: Record<string, string>; fields: [string, Value][] } {
  switch (kind) {
    case 'admin': return { headers: { authorization: `Bearer ${c.apiKey}` }, fields: [] };
    case 'manage': return { headers: { cookie: c.admin.cookie, 'x-csrf-token': c.admin.csrf }, fields: [['csrf_token', c.admin.csrf]] };
    case 'user': return { headers: { cookie: `user_selfservice=${c.user.session}` }, fields: [['session', c.user.session]] };
    case 'portal': return { headers: { cookie: `user_selfservice=${c.user.session}` }, fields: [['csrf_token', c.user.csrf]] };
    default: return { headers: {}, fields: [] };
  }
}

/** Routes after which the walk's own credentials may be gone (ended, revoked, deleted). */
export const MAY_END_CREDENTIALS = /logout|apikey|admins|delete|remove|unassign|login/;

/** Requests of one route sent at once. */
const BURST = 6;

export interface WalkResult {
  requests: number;
  problems: string[];
  /** Answers by status class, for the report. */
  statuses: Map<number, number>;
  slowestMs: number;
  /** Time spent per route, for the report. */
  msByRoute: Map<string, number>;
  /** Requests to a route behind a credential check refused there (401, or a redirect to a login page), by route. */
  refusedAtCheck: Map<string, number>;
  /**
   * Routes behind a credential check whose every request was refused there: the walk did not
   * get past the check to the parameters. A single refusal is no sign of that (a mutation may
   * drop, repeat or overwrite the `session` or `csrf_token` field; a logout ends the session for
   * the rest of its burst). Logouts are left out: their success is a redirect to the login page.
   */
  walledOff: string[];
}

/**
 * Sends `perRoute` fuzz requests to every target; `rearm` runs before each route (new
 * credentials when the walk revoked or ended its own), `between` after every tenth burst (a
 * valid login whose OTP joins the secrets).
 */
export async function walk(opts: {
  targets: Target[];
  names: Map<string, string[]>;
  perRoute: number;
  rnd: Rnd;
  secrets: Secrets;
  otp: () => string;
  /** The credentials; `check` asks to test them first (after a route that may have ended them). */
  credentials: (check: boolean) => Promise<Credentials>;
  send: (r: FuzzRequest) => Promise<Answer>;
  between?: () => Promise<void>;
  maxProblems?: number;
}): Promise<WalkResult> {
  const result: WalkResult = { requests: 0, problems: [], statuses: new Map(), slowestMs: 0, msByRoute: new Map(), refusedAtCheck: new Map(), walledOff: [] };
  const sentTo = new Map<string, number>();
  let suspect = true;
  let bursts = 0;
  for (const target of walkOrder(opts.targets)) {
    const kind = kindOf(target.route);
    // a public route needs no credentials: none are checked or made for it (the login routes
    // come last, and a fresh login after their fuzz would meet the login throttle they tripped)
    const creds = kind === 'public' ? undefined : await opts.credentials(suspect || MAY_END_CREDENTIALS.test(target.route));
    suspect = (kind === 'public' && suspect) || MAY_END_CREDENTIALS.test(target.route);
    const auth = creds ? authFor(kind, creds) : { headers: {}, fields: [] };
    const names = opts.names.get(target.route) ?? [];
    // a route's requests go out in parallel bursts: a refusal's failure floor is waited once per
    // burst, and concurrent bad input is an attack of its own
    for (let sent = 0; sent < opts.perRoute; sent += BURST) {
      const reqs = Array.from({ length: Math.min(BURST, opts.perRoute - sent) }, () => {
        const base: [string, Value][] = [...names.map((n): [string, Value] => [n, plausible(n, opts.otp)]), ...auth.fields];
        return makeRequest(opts.rnd, target, base, names, SECRET_NAMES, auth.headers);
      });
      const burstStarted = performance.now();
      const answers = await Promise.all(reqs.map((r) => opts.send(r)));
      result.msByRoute.set(target.route, (result.msByRoute.get(target.route) ?? 0) + performance.now() - burstStarted);
      answers.forEach((a, i) => {
        const req = reqs[i];
        result.requests++;
        if (kind !== 'public') sentTo.set(target.route, (sentTo.get(target.route) ?? 0) + 1);
        result.slowestMs = Math.max(result.slowestMs, a.ms);
        const cls = Math.floor(a.status / 100) * 100;
        result.statuses.set(cls, (result.statuses.get(cls) ?? 0) + 1);
        const problem = problemWith(req, a, opts.secrets);
        if (problem) result.problems.push(`${req.method} ${target.route} (${req.what}) [${req.url.slice(0, 160)}]: ${problem}`);
        if (a.status === 401 || (a.status === 303 && /\/login/.test(String(a.headers.location)))) {
          suspect = true;
          if (kind !== 'public') result.refusedAtCheck.set(target.route, (result.refusedAtCheck.get(target.route) ?? 0) + 1);
        }
      });
      if (result.problems.length >= (opts.maxProblems ?? 30)) return result;
      if (++bursts % 10 === 0) await opts.between?.();
    }
  }
  // a logout's success is itself a redirect to the login page: it cannot be told from a refusal
  result.walledOff = [...sentTo].filter(([route, n]) => !/logout/.test(route) && result.refusedAtCheck.get(route) === n).map(([route]) => route);
  return result;
}

/** Cookies a response set, by name. */
export function cookiesOf(headers: Record<string, unknown>): Record<string, string> {
  const raw = headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return Object.fromEntries(list.map((c: string) => c.split(';')[0].split('=')).map(([k, ...v]) => [k.trim(), v.join('=')]));
}

/** How long a credential login may wait out the login throttle or an account's refusal window. */
const LOGIN_WAIT_MS = 90_000;

/**
 * The walk's credentials over any transport: the API key (a new one when the walk revoked it),
 * an admin session, alice's self-service session and its portal CSRF token (new ones when
 * the walk ended them). `check` false answers the last ones without a request.
 *
 * A login the walk needs must work: the fuzz of /admin/login and the self-service logins
 * comes from the same address and names, so a fresh login may meet the throttle those
 * failures opened. It is waited out (Retry-After, else 1 s doubling, up to LOGIN_WAIT_MS);
 * a login still refused after that fails the run with the answer, never a walk without its
 * credentials (a session header of `undefined`, or every route refused at its check).
 */
export function credentialsVia(send: (r: FuzzRequest) => Promise<Answer>, apiKey: string, newApiKey: () => Promise<string>, standing: [string, Form][]): (check: boolean) => Promise<Credentials> {
  let creds: Credentials | undefined;
  const form = (url: string, f: Record<string, string>, headers: Record<string, string> = {}) =>
    send({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(f).toString(), what: 'credentials' });
  const get = (url: string, cookie: string) => send({ method: 'GET', url, headers: { cookie }, what: 'credentials' });
  /** Sends the standing setup calls again (the walk may have deleted the realm its logins need). */
  const restore = async (why: string) => {
    process.stdout.write(`# ${why} refused: the fuzz's standing setup sent again\n`);
    for (const [path, f] of standing) {
      const answer = await form(path, f, { authorization: `Bearer ${creds?.apiKey ?? apiKey}` });
      const result = answer.status === 200 ? JSON.parse(answer.body).result : undefined;
      // a user store that is still there is refused as existing (ERR2353): it stands
      if (result?.status !== true && result?.error?.code !== 2353) throw new Error(`restoring the fuzz's setup: ${path} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
    }
  };
  async function loginUntil<T>(what: string, attempt: () => Promise<{ got?: T; answer: Answer }>): Promise<T> {
    const deadline = Date.now() + LOGIN_WAIT_MS;
    let restored = false;
    for (let waitMs = 1000; ; waitMs = Math.min(waitMs * 2, 16_000)) {
      const { got, answer } = await attempt();
      if (got !== undefined) return got;
      if (!restored) {
        restored = true;
        await restore(what);
        continue;
      }
      const retryAfterMs = Number(answer.headers['retry-after']) * 1000 || waitMs;
      if (Date.now() + retryAfterMs > deadline) throw new Error(`${what} for the fuzz's credentials refused (HTTP ${answer.status}, still after ${LOGIN_WAIT_MS / 1000} s): ${answer.body.slice(0, 300)}`);
      await new Promise((r) => setTimeout(r, retryAfterMs));
    }
  }
  const adminSession = () => loginUntil('the admin login', async () => {
    const answer = await form('/admin/login', { username: 'admin', password: ADMIN_PASSWORD });
    const c = cookiesOf(answer.headers);
    const got = c.access_token_cookie && c.csrf_access_token ? { cookie: `access_token_cookie=${c.access_token_cookie}; csrf_access_token=${c.csrf_access_token}`, csrf: c.csrf_access_token } : undefined;
    return { got, answer };
  });
  const userSession = () => loginUntil("alice's self-service login", async () => {
    const answer = await form('/userservice/login', { login: 'alice', password: ALICE_PASSWORD, realm: 'corp' });
    const session = cookiesOf(answer.headers).user_selfservice;
    if (!session) return { answer };
    const portal = await get('/selfservice/', `user_selfservice=${session}`);
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(portal.body)?.[1];
    return { got: csrf ? { session, csrf } : undefined, answer: csrf ? answer : portal };
  });
  return async (check) => {
    if (creds && !check) return creds;
    if (creds) {
      if ((await form('/admin/show', { serial: 'HOTP1' }, { authorization: `Bearer ${creds.apiKey}` })).status === 401) creds.apiKey = await newApiKey();
      const page = await get('/manage/', creds.admin.cookie);
      const portal = await get('/selfservice/', `user_selfservice=${creds.user.session}`);
      if (page.status !== 200) creds.admin = await adminSession();
      if (portal.status !== 200) creds.user = await userSession();
      return creds;
    }
    creds = { apiKey, admin: await adminSession(), user: await userSession() };
    return creds;
  };
}

/** The route methods of an app as fuzz targets (each once; path parameters filled in). */
export function targetsOf(routes: { url: string; methods: string[] }[]): Target[] {
  const seen = new Set<string>();
  const targets: Target[] = [];
  for (const r of routes) for (const m of r.methods) {
    const key = `${m} ${r.url}`;
    if (seen.has(key) || !['GET', 'POST', 'HEAD'].includes(m)) continue;
    seen.add(key);
    targets.push({ method: m as Target['method'], url: fillPath(r.url), route: r.url });
  }
  return targets;
}

/** `discoverNames` through a transport: each round as a form (POST) or query (GET, HEAD) with the route's credentials. */
export function discoverVia(targets: Target[], send: (r: FuzzRequest) => Promise<Answer>, credentials: (check: boolean) => Promise<Credentials>, otp: () => string): Promise<Map<string, string[]>> {
  const prepare = async (t: Target) => {
    const kind = kindOf(t.route);
    return kind === 'public' ? { headers: {}, fields: [] } : authFor(kind, await credentials(MAY_END_CREDENTIALS.test(t.route)));
  };
  return discoverNames(targets, prepare, async (t, f, auth) => {
    const body = formEncode([...Object.entries(f), ...auth.fields]);
    await send(t.method === 'POST'
      ? { method: 'POST', url: t.url, headers: { ...auth.headers, 'content-type': 'application/x-www-form-urlencoded' }, body, what: 'discovery' }
      : { method: t.method, url: `${t.url}?${body}`, headers: auth.headers, what: 'discovery' });
  }, otp);
}

export { HotpCounter, Secrets };
