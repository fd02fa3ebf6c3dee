import { randomBytes } from 'node:crypto';
import { Errors } from '../errors.ts';
import { HASHES, type HashName } from '../otp/hotp.ts';
import type { InitDefaults, ParamReader } from './types.ts';

const MIN_SEED_BYTES = 16; // 128 bits (RFC 4226 R6)
const MAX_SEED_BYTES = 128;

/** The seed from `otpkey` (hex) or a fresh random one (`genkey=1`). */
export function seedFrom(params: ParamReader, genkey: boolean, hashlib: HashName): Buffer {
  const otpkey = params.get('otpkey');
  if (genkey && otpkey !== undefined) throw Errors.genkeyAndOtpkey();
  if (otpkey === undefined || otpkey === '') {
    const size = hashlib === 'sha512' ? 64 : hashlib === 'sha256' ? 32 : 20;
    return randomBytes(size);
  }
  const hex = otpkey.trim();
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw Errors.invalidParameter({ name: 'otpkey', why: 'not a hex string of whole bytes' });
  const seed = Buffer.from(hex, 'hex');
  if (seed.length < MIN_SEED_BYTES) throw Errors.invalidParameter({ name: 'otpkey', why: `shorter than ${MIN_SEED_BYTES * 8} bits` });
  if (seed.length > MAX_SEED_BYTES) throw Errors.invalidParameter({ name: 'otpkey', why: `longer than ${MAX_SEED_BYTES} bytes` });
  return seed;
}

export function hashlibFrom(params: ParamReader, defaults: InitDefaults): HashName {
  const h = (params.get('hashlib') ?? defaults.hashlib).toLowerCase();
  if (!HASHES.includes(h as HashName)) throw Errors.invalidParameter({ name: 'hashlib', why: 'use sha1, sha256 or sha512' });
  return h as HashName;
}

export function otplenFrom(params: ParamReader, defaults: InitDefaults): number {
  const v = params.get('otplen');
  if (v === undefined || v === '') return defaults.otplen;
  if (!/^\d+$/.test(v)) throw Errors.invalidParameter({ name: 'otplen', why: 'not an integer' });
  const n = Number(v);
  if (n < 6 || n > 10) throw Errors.invalidParameter({ name: 'otplen', why: 'must be between 6 and 10' });
  return n;
}

/** What every OATH token (HOTP, TOTP) reads at init: hash, length and seed. */
export function oathBasics(params: ParamReader, defaults: InitDefaults, genkey: boolean): { hashlib: HashName; otplen: number; secret: Buffer } {
  const hashlib = hashlibFrom(params, defaults);
  return { hashlib, otplen: otplenFrom(params, defaults), secret: seedFrom(params, genkey, hashlib) };
}

const base32Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export function base32(data: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += base32Alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += base32Alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** otpauth:// enrollment URI (Google Authenticator key URI format). */
export function otpauthUri(kind: 'hotp' | 'totp', label: string, seed: Buffer, opts: { digits: number; hashlib: HashName; counter?: number; period?: number }): string {
  const issuer = 'otpd';
  const q = new URLSearchParams({ secret: base32(seed), issuer, digits: String(opts.digits), algorithm: opts.hashlib.toUpperCase() });
  if (kind === 'hotp') q.set('counter', String(opts.counter ?? 0));
  else q.set('period', String(opts.period ?? 30));
  return `otpauth://${kind}/${encodeURIComponent(issuer)}:${encodeURIComponent(label)}?${q.toString()}`;
}
