import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The key file: three 32-byte keys, never stored in the database.
 * slot 0 encrypts token seeds, slot 1 encrypts configuration secrets
 * (resolver/provider/RADIUS passwords), slot 2 keys the hashes of PINs,
 * one-time codes and API keys.
 */
const KEY_BYTES = 32;
const SLOTS = 3;
const FILE_BYTES = KEY_BYTES * SLOTS;

export type SecretPurpose = 'seed' | 'config';

export class KeyRing {
  private constructor(private readonly keys: Buffer[]) {}

  /** Loads the key file, creating it (mode 0600, missing directories 0700) when it does not exist. */
  static loadOrCreate(path: string): { keyring: KeyRing; created: boolean } {
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, randomBytes(FILE_BYTES), { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
      return { keyring: KeyRing.load(path), created: true };
    }
    return { keyring: KeyRing.load(path), created: false };
  }

  static load(path: string): KeyRing {
    const data = readFileSync(path);
    if (data.length !== FILE_BYTES) {
      throw new Error(`key file ${path}: expected ${FILE_BYTES} bytes, found ${data.length}`);
    }
    const mode = statSync(path).mode & 0o077;
    if (mode !== 0) process.emitWarning(`key file ${path} is readable by group/others; chmod 600 it`);
    return KeyRing.fromBytes(data);
  }

  /** For tests: a key ring from raw bytes (96 bytes) or a random one. */
  static fromBytes(data: Buffer = randomBytes(FILE_BYTES)): KeyRing {
    const keys: Buffer[] = [];
    for (let i = 0; i < SLOTS; i++) keys.push(Buffer.from(data.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES)));
    return new KeyRing(keys);
  }

  private keyFor(purpose: SecretPurpose): Buffer {
    return purpose === 'seed' ? this.keys[0] : this.keys[1];
  }

  /** AES-256-GCM; the purpose is authenticated data, so a config ciphertext never decrypts as a seed. */
  encrypt(purpose: SecretPurpose, plaintext: string | Buffer): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keyFor(purpose), iv);
    cipher.setAAD(Buffer.from(purpose));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return `g1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  decrypt(purpose: SecretPurpose, sealed: string): Buffer {
    if (!sealed.startsWith('g1:')) throw new Error('unknown ciphertext format');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.keyFor(purpose), raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(purpose));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
  }

  decryptString(purpose: SecretPurpose, sealed: string): string {
    return this.decrypt(purpose, sealed).toString('utf8');
  }

  /** Keyed hash (HMAC-SHA-256 under slot 2) of `value` in the given domain, hex. */
  hash(domain: string, value: string | Buffer): string {
    return createHmac('sha256', this.keys[2]).update(domain).update('\0').update(value).digest('hex');
  }

  /**
   * A 32-byte key for one purpose, derived from slot 2 with HKDF-SHA-256 (`label` is the
   * HKDF info), so it exists only where the key file is and never in the database.
   * Used for the audit chain's HMACs (`audit-chain`).
   */
  deriveKey(label: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.keys[2], Buffer.alloc(0), `otpd ${label} v1`, KEY_BYTES));
  }

  /** Constant-time comparison of `value`'s keyed hash with a stored one. */
  verifyHash(domain: string, value: string | Buffer, storedHex: string): boolean {
    const a = Buffer.from(this.hash(domain, value), 'hex');
    const b = Buffer.from(storedHex, 'hex');
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
