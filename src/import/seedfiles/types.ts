import type { HashName } from '../../otp/hotp.ts';

/** One token read from a seed file, before it is checked and stored. */
export interface SeedToken {
  serial: string;
  type: 'hmac' | 'totp';
  secret: Buffer;
  otplen: number;
  hashlib: HashName;
  /** HOTP: the next counter to accept. TOTP: 0. */
  counter: number;
  /** TOTP only. */
  timeStep?: number;
  description: string;
}

/** What a PSKC file needs to decrypt its secrets: a pre-shared key, or a password (PBKDF2). */
export interface SeedFileKeys {
  /** AES key of a pre-shared-key PSKC file (16 or 32 bytes). */
  psk?: Buffer;
  /** Password of a PBKDF2 PSKC file. */
  password?: string;
}

/** A seed file that cannot be imported; `message` says why (never a secret). */
export class SeedFileError extends Error {
  constructor(message: string, readonly needs?: { mode: string; param: string }) {
    super(message);
  }
}

/** The token file formats otpd reads. */
export const SEED_FILE_FORMATS = ['pskc', 'oathcsv'] as const;
export type SeedFileFormat = (typeof SEED_FILE_FORMATS)[number];
