import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { child, children, parseXml, textAt, type XmlElement } from './xml.ts';
import { SeedFileError, type SeedFileKeys, type SeedToken } from './types.ts';

/**
 * PSKC (RFC 6030) key containers: plain secrets (`PlainValue`), secrets encrypted with a
 * pre-shared key (`EncryptionKey/KeyName`, RFC 6030 6.1) and with a key derived from a password
 * (`EncryptionKey/DerivedKey` with PBKDF2, 6.2). Encrypted values are AES-CBC with the IV
 * before the ciphertext (xmlenc aes128-cbc / aes256-cbc); their `ValueMAC` (HMAC-SHA1, or
 * HMAC-SHA256, over IV and ciphertext under the container's MAC key) is checked before anything
 * is decrypted, and an encrypted value without one is refused. HOTP and TOTP keys are read;
 * any other algorithm refuses the file.
 */
const HOTP = /pskc[:#]hotp$/i;
const TOTP = /pskc[:#]totp$/i;
const CIPHERS: Record<string, { name: string; keyBytes: number }> = {
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc': { name: 'aes-128-cbc', keyBytes: 16 },
  'http://www.w3.org/2001/04/xmlenc#aes192-cbc': { name: 'aes-192-cbc', keyBytes: 24 },
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc': { name: 'aes-256-cbc', keyBytes: 32 },
};
const MACS: Record<string, string> = {
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1': 'sha1',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256': 'sha256',
};
const PRFS: Record<string, string> = {
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1': 'sha1',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256': 'sha256',
};

function base64(text: string | undefined, what: string): Buffer {
  const t = (text ?? '').replace(/\s+/g, '');
  if (t === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(t)) throw new SeedFileError(`${what}: not base64`);
  return Buffer.from(t, 'base64');
}

interface Protection {
  mode: 'plain' | 'psk' | 'password';
  encKey?: Buffer;
  macKey?: Buffer;
  macHash?: string;
}

function deriveKey(enc: XmlElement, keys: SeedFileKeys): Buffer {
  const derived = child(enc, 'DerivedKey')!;
  const method = child(derived, 'KeyDerivationMethod');
  if (!/pbkdf2$/i.test(method?.attrs.Algorithm ?? '')) throw new SeedFileError(`key derivation ${method?.attrs.Algorithm ?? '(none)'} is not supported (PBKDF2 is)`);
  if (keys.password === undefined || keys.password === '') throw new SeedFileError('the file is password-protected', { mode: 'a password (PBKDF2)', param: 'password' });
  const params = child(method, 'PBKDF2-params');
  const salt = base64(textAt(params, 'Salt', 'Specified'), 'PBKDF2 salt');
  const iterations = Number(textAt(params, 'IterationCount'));
  const length = Number(textAt(params, 'KeyLength'));
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) throw new SeedFileError('PBKDF2 IterationCount: expected 1..10000000');
  if (![16, 24, 32].includes(length)) throw new SeedFileError('PBKDF2 KeyLength: expected 16, 24 or 32');
  const prfAlg = child(params, 'PRF')?.attrs.Algorithm;
  const prf = prfAlg === undefined ? 'sha1' : PRFS[prfAlg];
  if (!prf) throw new SeedFileError(`PBKDF2 PRF ${prfAlg} is not supported`);
  return pbkdf2Sync(Buffer.from(keys.password, 'utf8'), salt, iterations, length, prf);
}

/** AES-CBC of an `EncryptedValue`-like element (EncryptionMethod + CipherData/CipherValue, IV first). */
function decryptElement(el: XmlElement, key: Buffer, what: string): { plain: Buffer; raw: Buffer } {
  const alg = child(el, 'EncryptionMethod')?.attrs.Algorithm ?? '';
  const cipher = CIPHERS[alg];
  if (!cipher) throw new SeedFileError(`${what}: encryption ${alg || '(none)'} is not supported (AES-CBC is)`);
  if (key.length !== cipher.keyBytes) throw new SeedFileError(`${what}: the key has ${key.length} bytes, ${alg} needs ${cipher.keyBytes}`);
  const raw = base64(textAt(el, 'CipherData', 'CipherValue'), `${what} CipherValue`);
  if (raw.length < 32 || raw.length % 16 !== 0) throw new SeedFileError(`${what}: the ciphertext is not an IV and whole AES blocks`);
  try {
    const d = createDecipheriv(cipher.name, key, raw.subarray(0, 16));
    return { plain: Buffer.concat([d.update(raw.subarray(16)), d.final()]), raw };
  } catch {
    throw new SeedFileError(`${what}: does not decrypt (wrong key or password?)`);
  }
}

function protectionOf(root: XmlElement, keys: SeedFileKeys): Protection {
  const enc = child(root, 'EncryptionKey');
  if (!enc) return { mode: 'plain' };
  let encKey: Buffer;
  let mode: Protection['mode'];
  if (child(enc, 'DerivedKey')) {
    mode = 'password';
    encKey = deriveKey(enc, keys);
  } else {
    mode = 'psk';
    if (!keys.psk) throw new SeedFileError('the file is encrypted with a pre-shared key', { mode: `the pre-shared key '${textAt(enc, 'KeyName') ?? ''}'`, param: 'psk (hex)' });
    encKey = keys.psk;
  }
  const macMethod = child(root, 'MACMethod');
  if (!macMethod) return { mode, encKey };
  const macHash = MACS[macMethod.attrs.Algorithm ?? ''];
  if (!macHash) throw new SeedFileError(`MAC ${macMethod.attrs.Algorithm ?? '(none)'} is not supported (HMAC-SHA1, HMAC-SHA256 are)`);
  const macKeyEl = child(macMethod, 'MACKey');
  if (!macKeyEl) throw new SeedFileError('MACMethod without MACKey');
  return { mode, encKey, macHash, macKey: decryptElement(macKeyEl, encKey, 'MACKey').plain };
}

/** The bytes of a `Data` child: PlainValue (base64 for Secret, text for numbers) or EncryptedValue. */
function dataValue(data: XmlElement | undefined, name: string, p: Protection, serial: string): Buffer | undefined {
  const el = child(data, name);
  if (!el) return undefined;
  const plain = child(el, 'PlainValue');
  if (plain) return name === 'Secret' ? base64(plain.text, `${serial} ${name}`) : Buffer.from(plain.text.trim(), 'utf8');
  const encrypted = child(el, 'EncryptedValue');
  if (!encrypted) throw new SeedFileError(`${serial} ${name}: neither PlainValue nor EncryptedValue`);
  if (!p.encKey) throw new SeedFileError(`${serial} ${name}: encrypted, but the file has no EncryptionKey`);
  const what = `${serial} ${name}`;
  const raw = base64(textAt(encrypted, 'CipherData', 'CipherValue'), `${what} CipherValue`);
  if (!p.macKey || !p.macHash) throw new SeedFileError(`${what}: encrypted without a MACMethod; otpd takes only authenticated values`);
  const mac = child(el, 'ValueMAC');
  if (!mac) throw new SeedFileError(`${what}: encrypted without a ValueMAC`);
  const expected = createHmac(p.macHash, p.macKey).update(raw).digest();
  const given = base64(mac.text, `${what} ValueMAC`);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new SeedFileError(`${what}: the ValueMAC does not match (wrong key or password, or the file was altered)`);
  const out = decryptElement(encrypted, p.encKey, what).plain;
  if (name === 'Secret') return out;
  // integers encrypted are big-endian bytes (RFC 6030 4.3.2): written here in decimal
  return Buffer.from(BigInt(`0x${out.toString('hex') || '0'}`).toString(), 'utf8');
}

function intOf(v: Buffer | undefined, what: string, fallback: number): number {
  if (v === undefined) return fallback;
  const t = v.toString('utf8');
  if (!/^\d{1,15}$/.test(t)) throw new SeedFileError(`${what}: not a non-negative integer`);
  return Number(t);
}

/** Reads every key of a PSKC document; throws SeedFileError (nothing partial is returned). */
export function parsePskc(text: string, keys: SeedFileKeys = {}): SeedToken[] {
  let root: XmlElement;
  try {
    root = parseXml(text);
  } catch (e) {
    throw new SeedFileError(`not XML: ${(e as Error).message}`);
  }
  if (root.name !== 'KeyContainer') throw new SeedFileError(`not a PSKC file: the root element is <${root.name}>, not <KeyContainer>`);
  const version = root.attrs.Version;
  if (version !== undefined && version !== '1.0') throw new SeedFileError(`PSKC version ${version} is not supported (1.0 is)`);
  const protection = protectionOf(root, keys);
  const out: SeedToken[] = [];
  const packages = children(root, 'KeyPackage');
  if (packages.length === 0) throw new SeedFileError('the file holds no KeyPackage');
  packages.forEach((pkg, index) => {
    const key = child(pkg, 'Key');
    if (!key) throw new SeedFileError(`KeyPackage ${index + 1} has no Key`);
    const serial = textAt(pkg, 'DeviceInfo', 'SerialNo') || key.attrs.Id || '';
    if (serial === '') throw new SeedFileError(`KeyPackage ${index + 1} has neither DeviceInfo/SerialNo nor a Key Id`);
    const alg = key.attrs.Algorithm ?? '';
    const type = HOTP.test(alg) ? 'hmac' : TOTP.test(alg) ? 'totp' : undefined;
    if (!type) throw new SeedFileError(`${serial}: algorithm ${alg || '(none)'} is not supported (PSKC HOTP and TOTP are)`);
    const format = child(child(key, 'AlgorithmParameters'), 'ResponseFormat');
    if (format?.attrs.Encoding && format.attrs.Encoding.toUpperCase() !== 'DECIMAL') throw new SeedFileError(`${serial}: response encoding ${format.attrs.Encoding} is not supported (DECIMAL is)`);
    const otplen = format?.attrs.Length === undefined ? 6 : Number(format.attrs.Length);
    const data = child(key, 'Data');
    const secret = dataValue(data, 'Secret', protection, serial);
    if (!secret) throw new SeedFileError(`${serial}: no Secret`);
    const counter = intOf(dataValue(data, 'Counter', protection, serial), `${serial} Counter`, 0);
    const timeStep = type === 'totp' ? intOf(dataValue(data, 'TimeInterval', protection, serial), `${serial} TimeInterval`, 30) : undefined;
    const description = [textAt(pkg, 'DeviceInfo', 'Manufacturer'), textAt(key, 'FriendlyName')].filter(Boolean).join(' ');
    out.push({ serial, type, secret, otplen, hashlib: 'sha1', counter: type === 'hmac' ? counter : 0, timeStep, description });
  });
  return out;
}
