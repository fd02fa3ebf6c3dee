import { isIP } from 'node:net';

/** An IPv4 or IPv6 network: the address bytes (host bits cleared) and the prefix length. */
export interface AddressRange {
  family: 4 | 6;
  bytes: Buffer;
  prefix: number;
}

/** Parses a literal IPv4/IPv6 address to its bytes; null when it is not one. */
export function parseIp(text: string): { family: 4 | 6; bytes: Buffer } | null {
  const address = stripZone(text.trim());
  const family = isIP(address);
  if (family === 4) return { family: 4, bytes: Buffer.from(address.split('.').map(Number)) };
  if (family !== 6) return null;
  const bytes = ipv6Bytes(address);
  const mapped = bytes.subarray(0, 12).equals(V4_MAPPED_PREFIX);
  return mapped ? { family: 4, bytes: Buffer.from(bytes.subarray(12)) } : { family: 6, bytes };
}

/**
 * Parses `192.0.2.7`, `10.0.0.0/8`, `::1` or `2001:db8::/32`. Host bits beyond the prefix
 * must be zero, so a typo such as `10.1.2.3/8` is refused instead of silently widened.
 * @throws Error naming what is wrong
 */
export function parseAddressRange(text: string): AddressRange {
  const [addressText, prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) throw new Error(`not an IP address or network: ${text}`);
  const ip = parseIp(addressText);
  if (!ip || addressText.includes('%')) throw new Error(`not an IP address or network: ${text}`);
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) throw new Error(`prefix length must be 0..${max}: ${text}`);
    prefix = Number(prefixText);
  }
  const masked = mask(ip.bytes, prefix);
  if (!masked.equals(ip.bytes)) throw new Error(`host bits set in ${text}; did you mean ${formatRange({ family: ip.family, bytes: masked, prefix })}?`);
  return { family: ip.family, bytes: masked, prefix };
}

export function rangeContains(range: AddressRange, ip: { family: 4 | 6; bytes: Buffer }): boolean {
  return range.family === ip.family && mask(ip.bytes, range.prefix).equals(range.bytes);
}

export function sameRange(a: AddressRange, b: AddressRange): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.bytes.equals(b.bytes);
}

/** Text of an address as used for policies and audit: IPv4-mapped IPv6 becomes plain IPv4. */
export function formatIp(ip: { family: 4 | 6; bytes: Buffer }): string {
  if (ip.family === 4) return [...ip.bytes].join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(ip.bytes.readUInt16BE(i));
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function formatRange(range: AddressRange): string {
  const max = range.family === 4 ? 32 : 128;
  const ip = formatIp(range);
  return range.prefix === max ? ip : `${ip}/${range.prefix}`;
}

const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function stripZone(address: string): string {
  const percent = address.indexOf('%');
  return percent >= 0 ? address.slice(0, percent) : address;
}

function mask(bytes: Buffer, prefix: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] &= bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

/** Bytes of a textual IPv6 address already validated by `isIP`. */
function ipv6Bytes(address: string): Buffer {
  let text = address;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    for (const octet of text.slice(lastColon + 1).split('.')) tail.push(Number(octet));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.split('::');
  const parse = (s: string | undefined) => (s ? s.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const headGroups = parse(head);
  const restGroups = parse(rest);
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...new Array<number>(zeros).fill(0), ...restGroups];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tail.length === 4) Buffer.from(tail).copy(out, 12);
  return out;
}
