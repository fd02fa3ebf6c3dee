import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import radius from 'radius';

/**
 * RADIUS framing for otpd. The `radius` npm package is used as the dictionary-driven
 * attribute codec; the framing checks, Message-Authenticator, User-Password hiding and
 * the reply layout are done here, because the package appends Message-Authenticator
 * *last* in replies (`encode_response`) and only when the request carried one, while
 * BlastRADIUS (CVE-2024-3596) mitigation wants it *first* in every reply.
 */

export const Code = {
  AccessRequest: 1,
  AccessAccept: 2,
  AccessReject: 3,
  AccessChallenge: 11,
  StatusServer: 12,
} as const;

export const Attr = {
  UserName: 1,
  UserPassword: 2,
  ChapPassword: 3,
  NasIpAddress: 4,
  ReplyMessage: 18,
  State: 24,
  ProxyState: 33,
  MessageAuthenticator: 80,
  NasIpv6Address: 95,
} as const;

const HEADER_BYTES = 20;
/** RFC 2865 §3: the maximum packet length. */
export const MAX_PACKET_BYTES = 4096;
const MAX_ATTRIBUTE_VALUE_BYTES = 253;
const MESSAGE_AUTHENTICATOR_BYTES = 16;

/** Where the FreeRADIUS dictionaries live on Debian (package freeradius-common). */
export const DEBIAN_DICTIONARY = '/usr/share/freeradius/dictionary';

/** Functions of the `radius` package that @types/radius does not declare. */
interface RadiusInternals {
  load_dictionaries(): void;
  attr_name_to_id(name: string, vendorId?: number | string): string | undefined;
  vendor_name_to_id(name: string): string | undefined;
  _attr_to(name: string, vendorId: number | string | undefined, field: number): string | undefined;
}
const codec = radius as unknown as typeof radius & RadiusInternals;
const ATTR_TYPE_FIELD = 2;

let dictionariesLoaded = false;

/**
 * Loads the package's bundled RFC dictionaries plus Debian's FreeRADIUS dictionaries
 * (vendor attributes for reply mapping) when they are installed. Idempotent.
 */
export function loadDictionaries(path = DEBIAN_DICTIONARY): void {
  if (dictionariesLoaded) return;
  if (existsSync(path)) radius.add_dictionary(path);
  codec.load_dictionaries();
  dictionariesLoaded = true;
}

export interface RawAttribute {
  type: number;
  value: Buffer;
  /** Offset of the attribute's type byte in the packet. */
  offset: number;
}

export interface Frame {
  code: number;
  identifier: number;
  authenticator: Buffer;
  /** The packet cut to its declared length (bytes after it are padding, RFC 2865 §3). */
  packet: Buffer;
  attributes: RawAttribute[];
}

/**
 * Structural checks of a datagram: header, declared length, attribute lengths, a single
 * Message-Authenticator of the right size. Never throws.
 */
export function parseFrame(msg: Buffer): { frame: Frame } | { error: string } {
  if (msg.length < HEADER_BYTES) return { error: `packet of ${msg.length} bytes is shorter than a header` };
  const length = msg.readUInt16BE(2);
  if (length < HEADER_BYTES || length > MAX_PACKET_BYTES) return { error: `declared length ${length} out of range` };
  if (length > msg.length) return { error: `declared length ${length} exceeds datagram of ${msg.length} bytes` };
  const packet = msg.subarray(0, length);
  const attributes: RawAttribute[] = [];
  let offset = HEADER_BYTES;
  let messageAuthenticators = 0;
  while (offset < length) {
    if (offset + 2 > length) return { error: `truncated attribute header at ${offset}` };
    const type = packet[offset];
    const attributeLength = packet[offset + 1];
    if (attributeLength < 2 || offset + attributeLength > length) return { error: `attribute ${type} at ${offset} has bad length ${attributeLength}` };
    if (type === Attr.MessageAuthenticator) {
      messageAuthenticators++;
      if (attributeLength !== 2 + MESSAGE_AUTHENTICATOR_BYTES || messageAuthenticators > 1) return { error: 'bad Message-Authenticator' };
    }
    attributes.push({ type, value: packet.subarray(offset + 2, offset + attributeLength), offset });
    offset += attributeLength;
  }
  return {
    frame: { code: packet[0], identifier: packet[1], authenticator: packet.subarray(4, HEADER_BYTES), packet, attributes },
  };
}

export function findAttribute(frame: Frame, type: number): RawAttribute | undefined {
  return frame.attributes.find((a) => a.type === type);
}

export function countAttribute(frame: Frame, type: number): number {
  let n = 0;
  for (const a of frame.attributes) if (a.type === type) n++;
  return n;
}

/** RFC 2869 §5.14: HMAC-MD5 over the request with the Message-Authenticator value zeroed. */
export function verifyRequestMessageAuthenticator(frame: Frame, secret: Buffer): boolean {
  const attribute = findAttribute(frame, Attr.MessageAuthenticator);
  if (!attribute) return false;
  const copy = Buffer.from(frame.packet);
  copy.fill(0, attribute.offset + 2, attribute.offset + 2 + MESSAGE_AUTHENTICATOR_BYTES);
  const expected = createHmac('md5', secret).update(copy).digest();
  return timingSafeEqual(expected, attribute.value);
}

/**
 * RFC 2865 §5.2: recovers a hidden User-Password; trailing NUL padding removed.
 * Null when the value is not a multiple of 16 bytes between 16 and 128.
 */
export function decryptUserPassword(hidden: Buffer, secret: Buffer, requestAuthenticator: Buffer): Buffer | null {
  if (hidden.length < 16 || hidden.length > 128 || hidden.length % 16 !== 0) return null;
  const plain = Buffer.alloc(hidden.length);
  let previous = requestAuthenticator;
  for (let i = 0; i < hidden.length; i += 16) {
    const b = createHash('md5').update(secret).update(previous).digest();
    for (let j = 0; j < 16; j++) plain[i + j] = hidden[i + j] ^ b[j];
    previous = hidden.subarray(i, i + 16);
  }
  let end = plain.length;
  while (end > 0 && plain[end - 1] === 0) end--;
  return plain.subarray(0, end);
}

/** The inverse of decryptUserPassword, for tests and clients. */
export function hideUserPassword(password: Buffer, secret: Buffer, requestAuthenticator: Buffer): Buffer {
  const padded = Buffer.alloc(Math.max(16, Math.ceil(password.length / 16) * 16));
  password.copy(padded);
  const out = Buffer.alloc(padded.length);
  let previous = requestAuthenticator;
  for (let i = 0; i < padded.length; i += 16) {
    const b = createHash('md5').update(secret).update(previous).digest();
    for (let j = 0; j < 16; j++) out[i + j] = padded[i + j] ^ b[j];
    previous = out.subarray(i, i + 16);
  }
  return out;
}

/**
 * Decodes every attribute with the dictionaries (names → typed values), which also
 * rejects values that do not fit their type. Throws on malformed attributes.
 */
export function decodeWithDictionary(frame: Frame): Record<string, unknown> {
  loadDictionaries();
  return radius.decode_without_secret({ packet: frame.packet }).attributes as Record<string, unknown>;
}

export function encodeAttribute(type: number, value: Buffer): Buffer {
  if (value.length > MAX_ATTRIBUTE_VALUE_BYTES) throw new Error(`attribute ${type} value longer than ${MAX_ATTRIBUTE_VALUE_BYTES} bytes`);
  return Buffer.concat([Buffer.from([type, value.length + 2]), value]);
}

/**
 * A text attribute such as Reply-Message, split into several attributes of at most
 * 253 bytes at character boundaries (RFC 2865 §5.18: clients concatenate them).
 */
export function encodeText(type: number, text: string): Buffer[] {
  const out: Buffer[] = [];
  let chunk = '';
  let chunkBytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (chunkBytes + n > MAX_ATTRIBUTE_VALUE_BYTES) {
      out.push(encodeAttribute(type, Buffer.from(chunk)));
      chunk = '';
      chunkBytes = 0;
    }
    chunk += ch;
    chunkBytes += n;
  }
  if (chunkBytes > 0) out.push(encodeAttribute(type, Buffer.from(chunk)));
  return out;
}

/**
 * Encodes reply attributes given by dictionary name (`Class`, `Filter-Id`,
 * `Session-Timeout`, vendor attributes such as `Cisco-AVPair`). Values of `octets`
 * attributes are taken as UTF-8 text, or as hex when written `0x…`.
 * @throws Error naming the attribute that cannot be encoded
 */
export function encodeNamedAttributes(attributes: Record<string, string>): Buffer {
  loadDictionaries();
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value !== 'string') throw new Error(`reply attribute ${name}: value must be a string`);
    if (RESERVED_REPLY_ATTRIBUTES.has(name)) throw new Error(`reply attribute ${name} is set by the server`);
    const vendor = vendorOf(name);
    const type = codec._attr_to(name, vendor?.id, ATTR_TYPE_FIELD);
    const id = Number(codec.attr_name_to_id(name, vendor?.id));
    // FreeRADIUS' internal attributes (numbers above 255) never go on the wire
    if (type === undefined || !(id >= 1 && id <= 255)) throw new Error(`unknown reply attribute ${name}`);
    const typed = type === 'octets' || type === 'abinary' ? octets(name, value) : value;
    const attribute: unknown[] = vendor ? ['Vendor-Specific', Number(vendor.id), [[name, typed]]] : [name, typed];
    let encoded: Buffer;
    try {
      encoded = radius.encode({ code: 'Access-Accept', secret: '-', identifier: 0, attributes: [attribute], add_message_authenticator: false });
    } catch (e) {
      throw new Error(`reply attribute ${name}: ${(e as Error).message}`);
    }
    if (encoded.length === HEADER_BYTES) throw new Error(`reply attribute ${name}: empty value`);
    parts.push(encoded.subarray(HEADER_BYTES));
  }
  return Buffer.concat(parts);
}

/** Attributes the server sets itself; a policy must not inject them. */
const RESERVED_REPLY_ATTRIBUTES = new Set(['Message-Authenticator', 'State', 'Proxy-State', 'User-Password', 'Reply-Message', 'EAP-Message']);

function vendorOf(name: string): { id: string } | undefined {
  if (codec.attr_name_to_id(name) !== undefined) return undefined;
  // Vendor attributes are named after their vendor: `Cisco-AVPair`, `Palo-Alto-User-Group`.
  const parts = name.split('-');
  for (let i = 1; i < parts.length; i++) {
    const id = codec.vendor_name_to_id(parts.slice(0, i).join('-'));
    if (id !== undefined && codec.attr_name_to_id(name, id) !== undefined) return { id };
  }
  return undefined;
}

function octets(name: string, value: string): Buffer {
  if (/^0x/i.test(value)) {
    const hex = value.slice(2);
    if (!/^([0-9a-f]{2})+$/i.test(hex)) throw new Error(`reply attribute ${name}: bad hex value`);
    return Buffer.from(hex, 'hex');
  }
  return Buffer.from(value, 'utf8');
}

/**
 * A reply (Accept, Reject, Challenge) with Message-Authenticator as its FIRST attribute,
 * followed by `attributes` (already encoded). RFC 2869 §5.14 / RFC 2865 §3.
 * @throws Error when the packet would exceed 4096 bytes
 */
export function encodeReply(args: { code: number; identifier: number; requestAuthenticator: Buffer; secret: Buffer; attributes: Buffer[] }): Buffer {
  const body = Buffer.concat([Buffer.from([Attr.MessageAuthenticator, 2 + MESSAGE_AUTHENTICATOR_BYTES]), Buffer.alloc(MESSAGE_AUTHENTICATOR_BYTES), ...args.attributes]);
  const length = HEADER_BYTES + body.length;
  if (length > MAX_PACKET_BYTES) throw new Error(`reply of ${length} bytes exceeds ${MAX_PACKET_BYTES}`);
  const packet = Buffer.alloc(length);
  packet[0] = args.code;
  packet[1] = args.identifier;
  packet.writeUInt16BE(length, 2);
  args.requestAuthenticator.copy(packet, 4);
  body.copy(packet, HEADER_BYTES);
  // Message-Authenticator is computed with the Request Authenticator in place ...
  createHmac('md5', args.secret).update(packet).digest().copy(packet, HEADER_BYTES + 2);
  // ... and the Response Authenticator over the packet that includes it.
  createHash('md5').update(packet).update(args.secret).digest().copy(packet, 4);
  return packet;
}

/** Checks a reply against its request as a client would (tests, health checks). */
export function verifyReply(reply: Buffer, requestAuthenticator: Buffer, secret: Buffer): boolean {
  const parsed = parseFrame(reply);
  if ('error' in parsed) return false;
  const copy = Buffer.from(parsed.frame.packet);
  requestAuthenticator.copy(copy, 4);
  const expected = createHash('md5').update(copy).update(secret).digest();
  if (!timingSafeEqual(expected, parsed.frame.authenticator)) return false;
  const ma = findAttribute(parsed.frame, Attr.MessageAuthenticator);
  if (!ma) return false;
  copy.fill(0, ma.offset + 2, ma.offset + 2 + MESSAGE_AUTHENTICATOR_BYTES);
  return timingSafeEqual(createHmac('md5', secret).update(copy).digest(), ma.value);
}
