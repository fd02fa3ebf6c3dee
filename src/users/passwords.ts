import { createHash, scryptSync, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { argon2dAsync, argon2iAsync, argon2idAsync } from '@noble/hashes/argon2.js';
import { PasswordCheckUnavailable, passwordPool } from './password-pool.ts';

/**
 * Verification of stored password hashes as user stores keep them (SQL tables,
 * passwd files, LDAP `userPassword` exports). Only verification: otpd never
 * writes user-store passwords.
 *
 * Supported: bcrypt (`$2a$`, `$2b$`, `$2y$`), sha512-crypt (`$6$`), sha256-crypt
 * (`$5$`), md5-crypt (`$1$`), scrypt (`$7$`, libxcrypt), argon2 (`$argon2id$`,
 * `$argon2i$`, `$argon2d$`, PHC strings), and the RFC 2307 schemes `{SHA}`,
 * `{SSHA}`, `{SHA256}`, `{SSHA256}`, `{SHA512}`, `{SSHA512}`, `{MD5}`, `{SMD5}`,
 * `{CRYPT}<crypt string>`, `{ARGON2}<PHC string>`. Anything else (plain text,
 * DES crypt, yescrypt, …) is refused: `verifyPassword` returns false.
 */

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Bounds that keep one verification's CPU and memory bounded whatever the stored hash says;
 * a hash above them is refused (as a wrong password, with a warning from its user store).
 * Measured on a 2-core build machine (CPU time of one check): sha512-crypt 5,000 rounds ≈ 23 ms,
 * 10,000 ≈ 40 ms; bcrypt (bcryptjs) cost 8 ≈ 22 ms, 10 ≈ 95 ms, 12 ≈ 350 ms; scrypt 16 MiB ≈
 * 50 ms, 64 MiB ≈ 200 ms. The scrypt bound admits libxcrypt's default `$7$` (N=2^14, r=32,
 * 64 MiB); its smallest setting is already 32 MiB. These checks run in worker threads
 * (password-pool.ts), so their time delays only other password checks, never the event loop.
 */
export const HASH_LIMITS = {
  maxShaCryptRounds: 10_000,
  maxBcryptCost: 10,
  maxScryptMemoryBytes: 64 * 1024 * 1024,
  maxArgon2MemoryKiB: 256 * 1024,
  maxArgon2Time: 20,
  maxArgon2Parallelism: 16,
};

export type HashScheme =
  | 'bcrypt' | 'sha512-crypt' | 'sha256-crypt' | 'md5-crypt' | 'scrypt' | 'argon2'
  | 'SHA' | 'SSHA' | 'SHA256' | 'SSHA256' | 'SHA512' | 'SSHA512' | 'MD5' | 'SMD5';

/** Which scheme a stored hash uses, or undefined when otpd cannot verify it. */
export function hashScheme(stored: string): HashScheme | undefined {
  const rfc2307 = /^\{([A-Za-z0-9]+)\}/.exec(stored);
  if (rfc2307) {
    const name = rfc2307[1].toUpperCase();
    const rest = stored.slice(rfc2307[0].length);
    if (name === 'CRYPT') return cryptScheme(rest);
    if (name === 'ARGON2') return cryptScheme(rest) === 'argon2' ? 'argon2' : undefined;
    const known = ['SHA', 'SSHA', 'SHA256', 'SSHA256', 'SHA512', 'SSHA512', 'MD5', 'SMD5'];
    return known.includes(name) ? (name as HashScheme) : undefined;
  }
  return cryptScheme(stored);
}

function cryptScheme(stored: string): HashScheme | undefined {
  if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(stored)) return 'bcrypt';
  if (stored.startsWith('$6$')) return 'sha512-crypt';
  if (stored.startsWith('$5$')) return 'sha256-crypt';
  if (stored.startsWith('$1$')) return 'md5-crypt';
  if (stored.startsWith('$7$')) return 'scrypt';
  if (/^\$argon2(id|i|d)\$/.test(stored)) return 'argon2';
  return undefined;
}

/**
 * Why otpd refuses to verify against `stored` because of its cost (rounds, bcrypt cost,
 * scrypt/argon2 memory above HASH_LIMITS), or undefined. Names the scheme and the numbers,
 * never the hash, so it can be logged.
 */
export function hashCostProblem(stored: string | null | undefined): string | undefined {
  if (typeof stored !== 'string') return undefined;
  let s = stored.trim();
  const prefix = /^\{(CRYPT|ARGON2)\}/i.exec(s);
  if (prefix) s = s.slice(prefix[0].length);
  const sha = /^\$([56])\$rounds=(\d+)\$/.exec(s);
  if (sha && Number(sha[2]) > HASH_LIMITS.maxShaCryptRounds) {
    return `${sha[1] === '5' ? 'sha256' : 'sha512'}-crypt with ${sha[2]} rounds (otpd verifies at most ${HASH_LIMITS.maxShaCryptRounds})`;
  }
  const bc = /^\$2[aby]\$(\d\d)\$/.exec(s);
  if (bc && Number(bc[1]) > HASH_LIMITS.maxBcryptCost) return `bcrypt with cost ${Number(bc[1])} (otpd verifies at most cost ${HASH_LIMITS.maxBcryptCost})`;
  const sc = /^\$7\$([./A-Za-z0-9])([./A-Za-z0-9]{5})([./A-Za-z0-9]{5})/.exec(s);
  if (sc) {
    const log2N = ITOA64.indexOf(sc[1]);
    const r = decode64Uint32(sc[2]) ?? 0;
    const p = decode64Uint32(sc[3]) ?? 0;
    const memory = 128 * 2 ** log2N * r;
    if (memory > HASH_LIMITS.maxScryptMemoryBytes || p > 64) {
      return `scrypt with N=2^${log2N}, r=${r}, p=${p} (otpd verifies at most ${HASH_LIMITS.maxScryptMemoryBytes / 1024 / 1024} MiB, p ≤ 64)`;
    }
  }
  const ar = /^\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=(\d+),t=(\d+),p=(\d+)\$/.exec(s);
  if (ar && (Number(ar[1]) > HASH_LIMITS.maxArgon2MemoryKiB || Number(ar[2]) > HASH_LIMITS.maxArgon2Time || Number(ar[3]) > HASH_LIMITS.maxArgon2Parallelism)) {
    return `argon2 with m=${ar[1]}, t=${ar[2]}, p=${ar[3]} (otpd verifies at most m=${HASH_LIMITS.maxArgon2MemoryKiB}, t=${HASH_LIMITS.maxArgon2Time}, p=${HASH_LIMITS.maxArgon2Parallelism})`;
  }
  return undefined;
}

/**
 * True when `password` matches `stored`. False for a wrong password, an empty
 * password, a password containing NUL, an empty or unknown stored format, or a
 * stored hash whose cost exceeds HASH_LIMITS (see hashCostProblem). Never throws
 * for bad input; throws PasswordCheckUnavailable when the check could not run
 * (worker pool full or a worker crashed), which is not a wrong password.
 */
export async function verifyPassword(password: string, stored: string | null | undefined, salt?: string): Promise<boolean> {
  if (typeof password !== 'string' || password === '' || password.includes('\0')) return false;
  if (typeof stored !== 'string' || stored === '') return false;
  if (hashCostProblem(stored)) return false;
  try {
    return await verify(password, stored.trim(), salt ?? '');
  } catch (e) {
    if (e instanceof PasswordCheckUnavailable) throw e;
    return false;
  }
}

/**
 * `salt` (an SQL salt column) only applies to the unsalted RFC 2307 digests
 * (`{SHA}`, `{SHA256}`, `{SHA512}`, `{MD5}`): digest(password + salt). Every
 * other format carries its own salt.
 */
async function verify(password: string, stored: string, salt: string): Promise<boolean> {
  const pw = password + salt;
  const rfc2307 = /^\{([A-Za-z0-9]+)\}/.exec(stored);
  if (rfc2307) {
    const name = rfc2307[1].toUpperCase();
    const rest = stored.slice(rfc2307[0].length);
    switch (name) {
      case 'CRYPT': return verifyCrypt(password, rest);
      case 'ARGON2': return cryptScheme(rest) === 'argon2' ? verifyArgon2(password, rest) : false;
      case 'SHA': return verifyDigest('sha1', 20, pw, rest, false);
      case 'SSHA': return verifyDigest('sha1', 20, password, rest, true);
      case 'SHA256': return verifyDigest('sha256', 32, pw, rest, false);
      case 'SSHA256': return verifyDigest('sha256', 32, password, rest, true);
      case 'SHA512': return verifyDigest('sha512', 64, pw, rest, false);
      case 'SSHA512': return verifyDigest('sha512', 64, password, rest, true);
      case 'MD5': return verifyDigest('md5', 16, pw, rest, false);
      case 'SMD5': return verifyDigest('md5', 16, password, rest, true);
      default: return false;
    }
  }
  return verifyCrypt(password, stored);
}

async function verifyCrypt(password: string, stored: string): Promise<boolean> {
  switch (cryptScheme(stored)) {
    case 'bcrypt': case 'sha512-crypt': case 'sha256-crypt': case 'md5-crypt': case 'scrypt':
      if (hashCostProblem(stored)) return false;
      return passwordPool().verify(password, stored);
    // argon2 (@noble) yields to the event loop by itself.
    case 'argon2': return verifyArgon2(password, stored);
    default: return false;
  }
}

/**
 * The slow crypt schemes, synchronously: runs inside a worker thread of the password pool
 * (password-worker.mjs), never on the event loop.
 */
export function verifyCryptSync(password: string, stored: string): boolean {
  if (hashCostProblem(stored)) return false;
  switch (cryptScheme(stored)) {
    // $2y$ (PHP) is the same algorithm as $2b$.
    case 'bcrypt': return bcrypt.compareSync(password, stored.replace(/^\$2y\$/, '$2b$'));
    case 'sha512-crypt': return equalStrings(shaCrypt(password, stored, 'sha512'), stored);
    case 'sha256-crypt': return equalStrings(shaCrypt(password, stored, 'sha256'), stored);
    case 'md5-crypt': return equalStrings(md5Crypt(password, stored), stored);
    case 'scrypt': return equalStrings(scryptCrypt(password, stored), stored);
    default: return false;
  }
}

function equalStrings(computed: string | undefined, stored: string): boolean {
  if (computed === undefined) return false;
  const a = Buffer.from(computed);
  const b = Buffer.from(stored);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `{SHA}`-family: base64(digest(password [+ salt]) [+ salt]). */
function verifyDigest(algorithm: string, size: number, password: string, b64: string, salted: boolean): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const raw = Buffer.from(b64, 'base64');
  if (salted ? raw.length <= size : raw.length !== size) return false;
  const expected = raw.subarray(0, size);
  const salt = raw.subarray(size);
  const actual = createHash(algorithm).update(password, 'utf8').update(salt).digest();
  return timingSafeEqual(actual, expected);
}

/** Encodes 24 bits (b2 b1 b0) as `n` crypt base-64 characters, least significant first. */
function b64From24(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += ITOA64[w & 0x3f];
    w >>>= 6;
  }
  return out;
}

/** md5-crypt (`$1$salt$hash`), Poul-Henning Kamp's FreeBSD scheme. */
export function md5Crypt(password: string, setting: string): string | undefined {
  const m = /^\$1\$([^$]{0,8})/.exec(setting);
  if (!m) return undefined;
  const salt = Buffer.from(m[1]);
  const pw = Buffer.from(password, 'utf8');
  const magic = Buffer.from('$1$');

  const alt = createHash('md5').update(pw).update(salt).update(pw).digest();
  const ctx = createHash('md5').update(pw).update(magic).update(salt);
  for (let left = pw.length; left > 0; left -= 16) ctx.update(alt.subarray(0, Math.min(16, left)));
  for (let i = pw.length; i > 0; i >>= 1) ctx.update(i & 1 ? Buffer.from([0]) : pw.subarray(0, 1));
  let final = ctx.digest();

  for (let i = 0; i < 1000; i++) {
    const c = createHash('md5');
    c.update(i & 1 ? pw : final);
    if (i % 3) c.update(salt);
    if (i % 7) c.update(pw);
    c.update(i & 1 ? final : pw);
    final = c.digest();
  }

  const f = final;
  const hash =
    b64From24(f[0], f[6], f[12], 4) + b64From24(f[1], f[7], f[13], 4) + b64From24(f[2], f[8], f[14], 4) +
    b64From24(f[3], f[9], f[15], 4) + b64From24(f[4], f[10], f[5], 4) + b64From24(0, 0, f[11], 2);
  return `$1$${m[1]}$${hash}`;
}

const SHA256_ORDER: [number, number, number][] = [
  [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14],
  [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
];
const SHA512_ORDER: [number, number, number][] = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48],
  [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13],
  [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
];

/** Repeats `block` to exactly `length` bytes. */
function stretch(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let off = 0; off < length; off += block.length) block.copy(out, off, 0, Math.min(block.length, length - off));
  return out;
}

/** sha256-crypt / sha512-crypt (`$5$`/`$6$[rounds=N$]salt$hash`), Ulrich Drepper's specification. */
export function shaCrypt(password: string, setting: string, algorithm: 'sha256' | 'sha512'): string | undefined {
  const id = algorithm === 'sha256' ? '5' : '6';
  const m = new RegExp(`^\\$${id}\\$(rounds=(\\d+)\\$)?([^$]{0,16})`).exec(setting);
  if (!m) return undefined;
  let rounds = 5000;
  if (m[2] !== undefined) {
    rounds = Math.min(Math.max(Number(m[2]), 1000), 999_999_999);
    if (rounds > HASH_LIMITS.maxShaCryptRounds) return undefined;
  }
  const salt = Buffer.from(m[3]);
  const pw = Buffer.from(password, 'utf8');
  const size = algorithm === 'sha256' ? 32 : 64;
  const H = () => createHash(algorithm);

  const b = H().update(pw).update(salt).update(pw).digest();
  const a = H().update(pw).update(salt);
  a.update(stretch(b, pw.length));
  for (let n = pw.length; n > 0; n >>= 1) a.update(n & 1 ? b : pw);
  const digestA = a.digest();

  const dp = H();
  for (let i = 0; i < pw.length; i++) dp.update(pw);
  const p = stretch(dp.digest(), pw.length);

  const ds = H();
  for (let i = 0; i < 16 + digestA[0]; i++) ds.update(salt);
  const s = stretch(ds.digest(), salt.length);

  let c = digestA;
  for (let i = 0; i < rounds; i++) {
    const h = H();
    h.update(i & 1 ? p : c);
    if (i % 3) h.update(s);
    if (i % 7) h.update(p);
    h.update(i & 1 ? c : p);
    c = h.digest();
  }

  let hash = '';
  for (const [x, y, z] of size === 32 ? SHA256_ORDER : SHA512_ORDER) hash += b64From24(c[x], c[y], c[z], 4);
  hash += size === 32 ? b64From24(0, c[31], c[30], 3) : b64From24(0, 0, c[63], 2);
  return `$${id}$${m[1] ?? ''}${m[3]}$${hash}`;
}

function decode64Uint32(text: string): number | undefined {
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const d = ITOA64.indexOf(text[i]);
    if (d < 0) return undefined;
    value += d * 2 ** (6 * i);
  }
  return value;
}

/** Crypt base-64 of bytes, little-endian groups of three (yescrypt/scrypt `encode64`). */
function encode64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    let value = 0;
    let bits = 0;
    do {
      value |= bytes[i++] << bits;
      bits += 8;
    } while (bits < 24 && i < bytes.length);
    for (let b = 0; b < bits; b += 6) {
      out += ITOA64[value & 0x3f];
      value >>>= 6;
    }
  }
  return out;
}

/** scrypt in libxcrypt's `$7$` format: N (log2), r, p, salt, 32-byte key. */
function scryptCrypt(password: string, setting: string): string | undefined {
  const m = /^\$7\$([./A-Za-z0-9])([./A-Za-z0-9]{5})([./A-Za-z0-9]{5})([^$]*)/.exec(setting);
  if (!m) return undefined;
  const log2N = ITOA64.indexOf(m[1]);
  const r = decode64Uint32(m[2]);
  const p = decode64Uint32(m[3]);
  if (log2N < 1 || log2N > 30 || !r || !p) return undefined;
  const N = 2 ** log2N;
  const memory = 128 * N * r;
  if (memory > HASH_LIMITS.maxScryptMemoryBytes || p > 64) return undefined;
  const key = scryptSync(password, m[4], 32, { N, r, p, maxmem: memory * 2 + 1024 * 1024 });
  return `$7$${m[1]}${m[2]}${m[3]}${m[4]}$${encode64(key)}`;
}

/** PHC argon2 string: `$argon2id$v=19$m=65536,t=2,p=1$<salt b64>$<hash b64>`. */
async function verifyArgon2(password: string, stored: string): Promise<boolean> {
  const m = /^\$argon2(id|i|d)\$(?:v=(\d+)\$)?m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(stored);
  if (!m) return false;
  const version = m[2] === undefined ? 0x10 : Number(m[2]);
  const [mem, t, p] = [Number(m[3]), Number(m[4]), Number(m[5])];
  if (mem > HASH_LIMITS.maxArgon2MemoryKiB || t > HASH_LIMITS.maxArgon2Time || p > HASH_LIMITS.maxArgon2Parallelism) return false;
  if (version !== 0x10 && version !== 0x13) return false;
  const salt = Buffer.from(m[6], 'base64');
  const expected = Buffer.from(m[7], 'base64');
  if (expected.length < 4) return false;
  const fn = m[1] === 'id' ? argon2idAsync : m[1] === 'i' ? argon2iAsync : argon2dAsync;
  const actual = await fn(Buffer.from(password, 'utf8'), salt, {
    t, m: mem, p, version, dkLen: expected.length, maxmem: (HASH_LIMITS.maxArgon2MemoryKiB + 1024) * 1024,
  });
  return timingSafeEqual(Buffer.from(actual), expected);
}
