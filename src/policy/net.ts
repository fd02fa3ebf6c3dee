import { isIPv4, isIPv6 } from 'node:net';

/** An IP address as a number (IPv4) or bigint (IPv6). IPv4-mapped IPv6 addresses are IPv4. */
export type Ip = { v: 4; n: number } | { v: 6; n: bigint };

/** A network: address with prefix length; a single address has the full prefix. */
export type Net = { v: 4; base: number; mask: number; prefix: number } | { v: 6; base: bigint; mask: bigint; prefix: number };

const ALL128 = (1n << 128n) - 1n;

function v4ToNumber(s: string): number {
  const p = s.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** Parses an IPv4 or IPv6 address (no zone id); undefined when it is not one. */
export function parseIp(input: string): Ip | undefined {
  const s = input.trim();
  if (isIPv4(s)) return { v: 4, n: v4ToNumber(s) };
  if (!isIPv6(s) || s.includes('%')) return undefined;
  let head = s;
  let tailV4: number | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tailV4 = v4ToNumber(s.slice(lastColon + 1));
    head = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const leftParts = left ? left.split(':') : [];
  const rightParts = right === undefined ? [] : right ? right.split(':') : [];
  const fill = 8 - leftParts.length - rightParts.length;
  const groups = right === undefined ? leftParts : [...leftParts, ...Array<string>(fill).fill('0'), ...rightParts];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(Number.parseInt(g, 16));
  if (tailV4 !== undefined) n = (n & ~0xffffffffn) | BigInt(tailV4);
  // IPv4-mapped (::ffff:a.b.c.d): the same host as a.b.c.d
  if (n >> 32n === 0xffffn) return { v: 4, n: Number(n & 0xffffffffn) };
  return { v: 6, n };
}

/** Parses `address` or `address/prefix`; undefined when it is neither. */
export function parseNet(input: string): Net | undefined {
  const s = input.trim();
  const slash = s.indexOf('/');
  const addr = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return undefined;
  const full = addr.v === 4 ? 32 : 128;
  let prefix = full;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    // an IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) is the IPv4 network /8
    if (addr.v === 4 && !isIPv4(s.slice(0, slash))) prefix -= 96;
    if (prefix < 0 || prefix > full) return undefined;
  }
  if (addr.v === 4) {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return { v: 4, base: (addr.n & mask) >>> 0, mask, prefix };
  }
  const mask = prefix === 0 ? 0n : ALL128 ^ ((1n << BigInt(128 - prefix)) - 1n);
  return { v: 6, base: addr.n & mask, mask, prefix };
}

/** Whether `ip` lies in `net`. */
export function inNet(ip: Ip, net: Net): boolean {
  if (ip.v === 4 && net.v === 4) return ((ip.n & net.mask) >>> 0) === net.base;
  if (ip.v === 6 && net.v === 6) return (ip.n & net.mask) === net.base;
  return false;
}
