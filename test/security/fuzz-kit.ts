/**
 * The HTTP fuzz's parts, shared by the fast run in `npm test` (test/security/param-fuzz.test.ts,
 * in-process through `app.inject`) and the long one under `npm run test:faults`
 * (test/faults/fuzz.test.ts, a real otpd process over sockets): the secrets a run plants, a
 * replayable random source, the hostile values, the request builder (every carrier and content
 * type) and the check of one answer.
 *
 * A request is plain data ({ method, url, headers, body }) so the same case can be injected or
 * sent over TCP, and printed when it fails.
 */
import { hotp } from '../../src/otp/hotp.ts';
import { base32 } from '../../src/tokens/seed.ts';

// ---- secrets: each unique, so a hit in a log or an answer is never a coincidence ----

export const HOTP_KEY = Buffer.from('fuzz-run-hotp-seed-00001', 'utf8');
export const SPARE_KEY = Buffer.from('fuzz-run-spare-seed-0002', 'utf8');
export const HOTP_PIN = 'fuzzPin-a83k';
export const SPASS_PIN = 'fuzzSpass-u29q';
export const PW_PASSWORD = 'fuzzStaticPw-j47e';
export const PW_PIN = 'fuzzPwPin-z05w';
export const ALICE_PASSWORD = 'fuzzAliceDir-o61m';
export const BOB_PASSWORD = 'fuzzBobDir-y38t';
export const ADMIN_PASSWORD = 'fuzzAdminPw-c72h';
export const BINDPW = 'fuzzBindPw-s14v';
export const SMS_PASSWORD = 'fuzzGwPass-l90r';
export const RADIUS_SECRET = 'fuzzRadius-e55x';

const keyForms = (k: Buffer) => [k.toString('hex'), k.toString('hex').toUpperCase(), base32(k), k.toString('base64'), k.toString('utf8')];

/**
 * Every secret of a run and every spelling of it. OTPs are added as the run uses them; a
 * 6-digit OTP counts as found only standing alone (a timestamp or an id holds any 6 digits).
 */
export class Secrets {
  private readonly plain = new Map<string, string>();
  private readonly otps = new Set<string>();

  constructor() {
    this.add('HOTP seed', ...keyForms(HOTP_KEY));
    this.add('spare seed', ...keyForms(SPARE_KEY));
    for (const [label, v] of Object.entries({ HOTP_PIN, SPASS_PIN, PW_PASSWORD, PW_PIN, ALICE_PASSWORD, BOB_PASSWORD, ADMIN_PASSWORD, BINDPW, SMS_PASSWORD, RADIUS_SECRET })) this.add(label, v);
  }

  add(label: string, ...values: string[]): void {
    values.forEach((v, i) => this.plain.set(v, values.length > 1 ? `${label}#${i}` : label));
  }

  otp(value: string): void {
    this.otps.add(value);
  }

  get size(): number {
    return this.plain.size + this.otps.size;
  }

  /** The label of the first secret in `text`, or undefined. */
  find(text: string): string | undefined {
    for (const [secret, label] of this.plain) if (text.includes(secret)) return label;
    // six digits standing alone: not part of a number, a decimal fraction or an identifier
    for (const m of text.matchAll(/(?<![\w.])\d{6}(?![\w.])/g)) if (this.otps.has(m[0])) return `OTP ${m[0]}`;
    return undefined;
  }
}

/** The next valid OTP of the HOTP token (counter kept here; the fuzz spends them in order). */
export class HotpCounter {
  private next = 0;
  constructor(private readonly key: Buffer) {}
  take(): string {
    return hotp(this.key, this.next++);
  }
  /** After a resync or reset moved the token's counter, skip ahead (the validation window covers the gap). */
  skip(n: number): void {
    this.next += n;
  }
}

// ---- randomness ----

/** xorshift32: fast and replayable (the seed is printed; OTPD_FUZZ_SEED replays a run). */
export function prng(seed: number) {
  let x = seed || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const int = (n: number) => next() % n;
  return {
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)],
    chance: (p: number) => next() / 2 ** 32 < p,
    bytes: (n: number) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
  };
}
export type Rnd = ReturnType<typeof prng>;

// ---- values ----

/** A value as a JSON body can carry it; `Raw` goes into a query string or form body unescaped. */
export type Value = string | number | boolean | null | Value[] | { [k: string]: Value } | Raw;
export class Raw {
  constructor(readonly encoded: string) {}
  toJSON(): string {
    return decodeURIComponentLoose(this.encoded);
  }
}
function decodeURIComponentLoose(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const nest = (depth: number, leaf: Value): Value => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};

/** Hostile strings: sizes around every limit, NUL and control bytes, Unicode edge cases, injection shapes. */
export const STRINGS: readonly string[] = [
  '', ' ', '  x  ', 'x', 'x'.repeat(128), 'x'.repeat(129), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(8192), 'x'.repeat(8193), 'é'.repeat(5000),
  'a\u0000b', '\u0000', 'a\u0001b', '\u007f', 'line\r\nX-Injected: 1', '\t', '\ufffd', '\ufeffBOM', '\u202eevil', '\u200b', '𝄞🙂', 'Ａｄｍｉｎ', 'ǅ', 'İ',
  '\ud800', '\udfff\ud800',
  '0', '-1', '1.5', '1e309', '-0', 'NaN', 'Infinity', '0x1f', '9'.repeat(400), '2147483648', '-9223372036854775809', '00000000000000000001',
  'true', 'false', 'null', 'undefined', '[]', '{}', '{"a":1}', '[1,2]', '"quoted"',
  "' OR '1'='1' --", '"; DROP TABLE tokens; --', '*)(uid=*', '*', '\\', '\\00', '../../../../etc/passwd', '%00', '%2e%2e%2f', '{{7*7}}', '${7*7}', '<%= 7*7 %>',
  '<script>alert(1)</script>', '<img src=x onerror=alert(1)>', 'javascript:alert(1)', '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString',
  '+4915123456789', '+12015550123', '+', '+0', 'alice@example.com', 'a@', 'alice', 'admin', 'corp', 'HOTP1', 'hmac', 'totp', 'sms', 'email', 'spass', 'pw',
  '2024-02-30', '1970-01-01T00:00:00Z', '99999-12-31', ',', ',,,', 'a,b,c', ' , ', ';', '&', '=', '#', '?', '/', '%', '%zz', '%e9',
];

/** Percent-encoded byte strings a query or form body can carry that no JSON string can: invalid UTF-8 and broken escapes. */
export const RAW_ENCODED: readonly string[] = [
  '%FF', '%FE%FF', '%C0%AF', '%C0%80', '%ED%A0%80', '%F4%90%80%80', '%F8%88%80%80%80', '%E2%82', '%80', '%', '%%', '%4', '%zz', '%u0041',
  'a%00b', '%00', '%0d%0a', '%1b[31m', '%ef%bf%bd', 'x'.repeat(300) + '%FF', '%25FF', '+%2B+', '%C3%A9', '%F0%9F%99%82',
];

/** Non-string values (a JSON body only). */
export const TYPED: readonly Value[] = [
  0, -1, 1.5, 1e308, -1e-308, 12345678901234567890, Number.MAX_SAFE_INTEGER + 2, true, false, null,
  [], [''], ['a', 'b'], [1, 2], [null], [[]], [{}], ['x'.repeat(9000)], Array.from({ length: 300 }, (_, i) => String(i)),
  {}, { $ne: '' }, { $gt: '' }, { toString: 'x' }, { __proto__: { polluted: true } } as Value, nest(40, 'deep'), nest(500, 1),
];

/** Values for secret fields: the secret with garbage that makes the field invalid (an error must not quote it). */
export const secretVariants = (secret: string): Value[] => [
  `${secret}\u0000`, `${secret}\u0001`, secret.repeat(1000), [secret, secret], { v: secret }, `${secret}\ufffd`, ` ${secret} `, new Raw(`${encodeLoose(secret)}%FF`),
];

/** Parameter names that are not parameters. */
export const BAD_NAMES: readonly string[] = [
  '__proto__', 'constructor', 'constructor[prototype][x]', '__proto__[admin]', 'a[', 'a]', 'a[][]', 'a[0]', 'a.b.c', '', ' ', 'x'.repeat(129), 'x'.repeat(5000),
  'é', '\u0000', 'a\u0000', 'PASS', 'Pass', 'serial[]', 'user[]', 'session[]', 'hasOwnProperty', '$where', '%FF', '@', 'a b', 'a=b',
];

// ---- requests ----

export interface FuzzRequest {
  method: 'GET' | 'POST' | 'HEAD';
  /** Path and query, exactly as sent (may hold invalid percent escapes). */
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** What the case is, for a failure message. */
  what: string;
}

export const CONTENT_TYPES: readonly string[] = [
  'application/x-www-form-urlencoded', 'application/json', 'multipart/form-data; boundary=----fuzz', 'text/plain', 'text/plain; charset=utf-8',
  'application/xml', 'text/xml', 'application/octet-stream', 'application/json; charset=utf-16le', 'application/x-www-form-urlencoded; charset=iso-8859-1',
  'application/csp-report', 'application/merge-patch+json', 'application/vnd.api+json', 'APPLICATION/JSON', 'application/json, text/plain', '*/*', 'garbage',
  'text/html', 'application/javascript', 'image/png', 'application/x-www-form-urlencoded; boundary=x', 'application/json;;;', ';', 'multipart/mixed',
];

type Pairs = [string, Value][];

/** encodeURIComponent that also takes lone surrogates: they go out as their WTF-8 bytes (%ED%A0%80), which is invalid UTF-8. */
export function encodeLoose(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|[^\ud800-\udfff]+|[\ud800-\udbff][\udc00-\udfff]/g, (part) => {
    if (part.length !== 1 || part.charCodeAt(0) < 0xd800 || part.charCodeAt(0) > 0xdfff) return encodeURIComponent(part);
    const c = part.charCodeAt(0);
    return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
  });
}
const enc = (v: Value): string => v instanceof Raw ? v.encoded : encodeLoose(typeof v === 'string' ? v : v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
/** Form/query encoding; a list value repeats the name (`a=1&a=2`), as browsers and curl do. */
export const formEncode = (pairs: Pairs): string => pairs
  .flatMap(([k, v]) => Array.isArray(v) ? (v.length ? v.map((x) => `${encodeLoose(k)}=${enc(x)}`) : [`${encodeLoose(k)}=`]) : [`${encodeLoose(k)}=${enc(v)}`])
  .join('&');
function jsonEncode(pairs: Pairs): string {
  // built by hand so duplicate and `__proto__` keys survive into the text
  return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`;
}
function multipart(pairs: Pairs): string {
  return pairs.map(([k, v]) => `------fuzz\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${typeof v === 'string' ? v : JSON.stringify(v)}\r\n`).join('') + '------fuzz--\r\n';
}

/** How a mutation changes the realistic parameters of a route. */
function mutate(rnd: Rnd, base: Pairs, names: readonly string[], secretNames: ReadonlySet<string>): { pairs: Pairs; what: string } {
  const pairs: Pairs = base.map(([k, v]) => [k, v]);
  const rounds = 1 + rnd.int(3);
  const whats: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const name = names.length ? rnd.pick(names) : 'x';
    const at = pairs.findIndex(([k]) => k === name);
    const set = (v: Value) => (at >= 0 ? (pairs[at] = [name, v]) : pairs.push([name, v]));
    switch (rnd.int(9)) {
      case 0:
      case 1: {
        const v = rnd.pick(STRINGS);
        set(v);
        whats.push(`${name}=${JSON.stringify(v.slice(0, 40))}${v.length > 40 ? `…(${v.length})` : ''}`);
        break;
      }
      case 2: {
        const v = rnd.pick(RAW_ENCODED);
        set(new Raw(v));
        whats.push(`${name}=raw ${v.slice(0, 40)}`);
        break;
      }
      case 3: {
        const v = rnd.pick(TYPED);
        set(v);
        whats.push(`${name}=typed ${JSON.stringify(v)?.slice(0, 40)}`);
        break;
      }
      case 4: { // repeated: a=1&a=2…, or the list form a[]=
        const n = rnd.pick([2, 3, 50, 250]);
        const v = rnd.pick(STRINGS);
        if (rnd.chance(0.5)) for (let i = 0; i < n; i++) pairs.push([name, i % 2 ? v : (at >= 0 ? pairs[at][1] : 'x')]);
        else pairs.push([`${name}[]`, Array.from({ length: n }, () => v)]);
        whats.push(`${name} repeated ${n}×`);
        break;
      }
      case 5:
        if (at >= 0) pairs.splice(at, 1);
        whats.push(`without ${name}`);
        break;
      case 6: {
        const bad = rnd.pick(BAD_NAMES);
        pairs.push([bad, rnd.pick(STRINGS)]);
        whats.push(`odd name ${JSON.stringify(bad.slice(0, 30))}`);
        break;
      }
      case 7: { // a secret field with garbage: the refusal must not quote the secret
        const secretName = [...secretNames].find((s) => names.includes(s));
        if (!secretName) break;
        const value = pairs.find(([k]) => k === secretName)?.[1];
        if (typeof value !== 'string' || !value) break;
        const i = pairs.findIndex(([k]) => k === secretName);
        pairs[i] = [secretName, rnd.pick(secretVariants(value))];
        whats.push(`secret ${secretName} spoilt`);
        break;
      }
      default: { // every known name at once gets the same hostile value
        const v = rnd.pick(STRINGS);
        for (const n of names) {
          const i = pairs.findIndex(([k]) => k === n);
          if (i >= 0) pairs[i] = [n, v];
          else pairs.push([n, v]);
        }
        whats.push(`all names=${JSON.stringify(v.slice(0, 20))}`);
      }
    }
  }
  return { pairs, what: whats.join(', ') };
}

/** Whole-body attacks: deep JSON, huge bodies, bytes that are not UTF-8, bodies a parser trips over. */
export function bodyAttacks(): { what: string; type: string; body: string | Buffer; headers?: Record<string, string> }[] {
  return [
    { what: 'JSON nested 100 000 deep (arrays)', type: 'application/json', body: '['.repeat(100_000) + ']'.repeat(100_000) },
    { what: 'JSON nested 60 000 deep (objects)', type: 'application/json', body: '{"a":'.repeat(40_000) + '1' + '}'.repeat(40_000) },
    { what: 'JSON unclosed 120 000 deep', type: 'application/json', body: '['.repeat(120_000) },
    { what: 'form nested brackets', type: 'application/x-www-form-urlencoded', body: `a${'[a]'.repeat(20_000)}=1` },
    { what: 'a body just over the limit', type: 'application/x-www-form-urlencoded', body: `a=${'b'.repeat(256 * 1024)}` },
    { what: 'a 4 MB JSON body', type: 'application/json', body: `{"a":"${'b'.repeat(4 * 1024 * 1024)}"}` },
    { what: '30 000 parameters', type: 'application/x-www-form-urlencoded', body: Array.from({ length: 30_000 }, (_, i) => `p${i}=1`).join('&') },
    { what: '20 000 duplicate keys', type: 'application/x-www-form-urlencoded', body: 'serial=1&'.repeat(20_000) },
    { what: 'JSON with 20 000 duplicate keys', type: 'application/json', body: `{${'"serial":"1",'.repeat(20_000)}"x":1}` },
    { what: 'invalid UTF-8 bytes in a form body', type: 'application/x-www-form-urlencoded', body: Buffer.from([0x73, 0x65, 0x72, 0x69, 0x61, 0x6c, 0x3d, 0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80]) },
    { what: 'invalid UTF-8 bytes in a JSON body', type: 'application/json', body: Buffer.concat([Buffer.from('{"serial":"'), Buffer.from([0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('"}')]) },
    { what: 'UTF-16 JSON', type: 'application/json; charset=utf-16le', body: Buffer.from('{"serial":"HOTP1"}', 'utf16le') },
    { what: 'a BOM before JSON', type: 'application/json', body: '\ufeff{"serial":"HOTP1"}' },
    { what: 'JSON null', type: 'application/json', body: 'null' },
    { what: 'JSON string', type: 'application/json', body: '"serial"' },
    { what: 'JSON number', type: 'application/json', body: '1e999' },
    { what: 'JSON with NUL bytes', type: 'application/json', body: '{"serial":"a\\u0000b","\\u0000":1}' },
    { what: 'JSON lone surrogates', type: 'application/json', body: '{"serial":"\\ud800","pass":"\\udfff"}' },
    { what: 'JSON __proto__ key', type: 'application/json', body: '{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}' },
    { what: 'an empty JSON body', type: 'application/json', body: '' },
    { what: 'whitespace JSON', type: 'application/json', body: ' \n\t ' },
    { what: 'random bytes as JSON', type: 'application/json', body: Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919) % 256)) },
    { what: 'random bytes as a form', type: 'application/x-www-form-urlencoded', body: Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 104729) % 256)) },
    { what: 'gzip declared, not gzip', type: 'application/json', body: '{"serial":"HOTP1"}', headers: { 'content-encoding': 'gzip' } },
    { what: 'an unknown content encoding', type: 'application/x-www-form-urlencoded', body: 'serial=HOTP1', headers: { 'content-encoding': 'br, zstd, x-fuzz' } },
    { what: 'a multipart body without its boundary', type: 'multipart/form-data', body: '--x\r\nContent-Disposition: form-data; name="serial"\r\n\r\nHOTP1\r\n--x--' },
    { what: 'XML with an entity bomb', type: 'application/xml', body: '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>' },
  ];
}

export interface Target {
  method: 'GET' | 'POST' | 'HEAD';
  /** The route's URL with its path parameters filled in. */
  url: string;
  /** The route as registered (`/manage/tokens/:serial`), for reports. */
  route: string;
}

/**
 * One fuzz request for a route: the realistic parameters mutated, sent in a random carrier
 * (query string, form, JSON, multipart, a foreign or broken content type), or now and then a
 * whole-body attack. `auth` headers and `extra` fields (a CSRF token, a session parameter)
 * are added so the request gets past the credential check to the parameters.
 */
export function makeRequest(rnd: Rnd, target: Target, base: Pairs, names: readonly string[], secretNames: ReadonlySet<string>, auth: Record<string, string>): FuzzRequest {
  const { method } = target;
  if (method !== 'GET' && method !== 'HEAD' && rnd.chance(0.06)) {
    const attacks = bodyAttacks();
    const a = attacks[rnd.int(attacks.length)];
    const query = formEncode(base);
    return { method, url: `${target.url}${query ? `?${query}` : ''}`, headers: { ...auth, 'content-type': a.type, ...a.headers }, body: a.body, what: a.what };
  }
  const { pairs, what } = mutate(rnd, base, names, secretNames);
  if (method === 'GET' || method === 'HEAD' || rnd.chance(0.2)) {
    return { method, url: `${target.url}?${formEncode(pairs)}`, headers: { ...auth }, what: `query: ${what}` };
  }
  const carrier = rnd.int(10);
  if (carrier < 4) return { method, url: target.url, headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: formEncode(pairs), what: `form: ${what}` };
  if (carrier < 7) {
    // a JSON body holds no invalid escape: a Raw value goes in decoded
    return { method, url: target.url, headers: { ...auth, 'content-type': 'application/json' }, body: jsonEncode(pairs), what: `json: ${what}` };
  }
  if (carrier === 7) return { method, url: target.url, headers: { ...auth, 'content-type': 'multipart/form-data; boundary=----fuzz' }, body: multipart(pairs), what: `multipart: ${what}` };
  const type = rnd.pick(CONTENT_TYPES);
  const body = rnd.chance(0.5) ? formEncode(pairs) : jsonEncode(pairs);
  // the credentials and CSRF fields are repeated in the query, so a foreign body type still reaches the parser
  return { method, url: `${target.url}?${formEncode(base.filter(([k]) => k === 'session' || k === 'csrf_token'))}`, headers: { ...auth, ...(type ? { 'content-type': type } : {}) }, body, what: `${type || 'no type'}: ${what}` };
}

// ---- the check of one answer ----

/** Stack frames, source paths, Node internals: never in an answer. */
export const STACK = /\bat [\w$.<>]+ \(|\bat (file|node):|\/src\/[\w/-]+\.ts|\.ts:\d+|node_modules|node:internal|\b(TypeError|ReferenceError|SyntaxError|RangeError): |Maximum call stack/;

export interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
  ms: number;
}

/** The longest a fuzz request may take to be answered (a bounded answer, not a stuck parser). */
export const ANSWER_MS = 5000;

/** What is wrong with an answer, or undefined. */
export function problemWith(req: FuzzRequest, a: Answer, secrets: Secrets): string | undefined {
  if (a.status >= 500) return `HTTP ${a.status}: ${a.body.slice(0, 300)}`;
  if (a.ms > ANSWER_MS) return `answered after ${a.ms} ms`;
  if (STACK.test(a.body)) return `a stack trace or source path in the answer: ${a.body.slice(0, 300)}`;
  // a redirect to the login page carries the client's own URL back (to return there after the
  // login): what the client put in it is no secret the server gave away
  const { location, 'content-length': length, ...rest } = a.headers;
  const headerText = JSON.stringify(typeof location === 'string' && location.includes(encodeURIComponent(req.url)) ? rest : { ...rest, location });
  if (STACK.test(headerText)) return `a stack trace in the headers: ${headerText.slice(0, 300)}`;
  // Content-Length is the body's size, and the sample values of Prometheus' text format are
  // measurements (byte counts, durations): a 6-digit one may equal one of the run's thousands of
  // OTPs by chance. Input can leak there only through a label value, which stays in the scan.
  const scanned = /^text\/plain; version=0\.0\.4/.test(String(a.headers['content-type'] ?? '')) ? a.body.replace(/ [-+]?(\d[\d.e+-]*|NaN|Inf)( \d+)?$/gm, '') : a.body;
  const leaked = secrets.find(scanned) ?? secrets.find(headerText);
  if (leaked) return `the answer holds the secret ${leaked}`;
  const type = String(a.headers['content-type'] ?? '');
  if (req.method === 'HEAD' || a.body === '') return undefined;
  // an error of the API is LinOTP's envelope; served pages (HTML, text, CSS) are checked above only
  if (!type.startsWith('application/json')) {
    if (a.status >= 400 && !/^(text\/html|text\/plain)/.test(type)) return `an error of type ${type}: ${a.body.slice(0, 200)}`;
    return undefined;
  }
  let json: any;
  try {
    json = JSON.parse(a.body);
  } catch {
    return `content-type JSON, body not JSON: ${a.body.slice(0, 200)}`;
  }
  if (a.status >= 400 || json?.result?.status === false) {
    // /validate/check_s answers its errors as LinOTP does: status false, value false, no error (docs/api.md)
    if (req.url.startsWith('/validate/check_s') && a.status === 200 && json?.result?.value === false && json.result.error === undefined) return undefined;
    // /admin/login refuses as LinOTP's login does: HTTP 401, status true, value false, detail.message
    if (req.url.startsWith('/admin/login') && a.status === 401 && json?.result?.value === false && typeof json.detail?.message === 'string') return undefined;
    if (json?.result?.status !== false) return `an error without LinOTP's envelope: ${a.body.slice(0, 200)}`;
    const e = json.result.error;
    if (typeof e?.code !== 'number' || typeof e?.message !== 'string') return `an error envelope without code and message: ${a.body.slice(0, 200)}`;
    if (e.code === -311) return `an internal error (-311) for bad input: ${a.body.slice(0, 200)}`;
  }
  return undefined;
}

/** Plausible values for a parameter name, so the request reaches the handler's deeper checks. */
export function plausible(name: string, otp: () => string): Value {
  const table: Record<string, Value> = {
    serial: 'HOTP1', user: 'alice', login: 'alice', username: 'alice', realm: 'corp', pass: `${HOTP_PIN}${otp()}`, password: ALICE_PASSWORD,
    type: 'hmac', otpkey: SPARE_KEY.toString('hex'), genkey: '0', pin: HOTP_PIN, userpin: HOTP_PIN, otp: '123456', otp1: '123456', otp2: '234567',
    name: 'fuzzobj', resolver: 'fuzzres', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.localusers', admin: 'fuzzadmin', id: '999999',
    scope: 'enrollment', action: 'maxtoken=50', client: '127.0.0.1', key: 'fuzz.key', value: 'fuzz', transactionid: '123456789012', state: '123456789012',
    description: 'fuzz', label: 'fuzz', rp: '10', page: '1', sortorder: 'asc', outform: 'json', to: '+4915123456789', phone: '+4915123456789', email: 'alice@example.com',
    address: '127.0.0.1', secret: 'fuzz-secret-not-planted', class: 'HttpSMSProvider', timeout: '5', config: '{"URL": "http://127.0.0.1:9/send"}',
    count: '1', active: 'true', enable: 'true', data: 'x', file: '[fuzzpol]\nscope = enrollment\naction = maxtoken=40\nrealm = corp\nuser = *\nclient = \n',
  };
  return table[name] ?? 'fuzz';
}
