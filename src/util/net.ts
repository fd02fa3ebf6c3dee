import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, Socket } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * IP addresses, CIDR networks and the outgoing-host policy, in one place for
 * RADIUS clients, policy `client` conditions, delivery providers and user
 * stores. Imports no otpd module.
 *
 * Rules kept everywhere:
 * - an IPv4-mapped IPv6 address (`::ffff:192.0.2.7`) is the IPv4 address;
 * - a network with host bits set (`10.1.2.3/8`) is refused, naming the
 *   network that was probably meant, never silently widened;
 * - before an address is classified, IPv4 embedded in IPv6 (mapped, NAT64
 *   `64:ff9b::/96`, IPv4-translated, 6to4, Teredo) is taken out, so no
 *   spelling of 169.254.169.254 or 127.0.0.1 passes as "public".
 *
 * One file on purpose, although it is a little over 400 lines: parsing,
 * classification and the host policy are one concern (which addresses otpd may
 * trust or connect to), and the rules above hold only while every path runs
 * through the same private helpers (`unmap`, `hostLiteral`, the class tables);
 * split apart, those helpers would have to be exported and could be bypassed.
 */

/** An IPv4 or IPv6 address; IPv4-mapped IPv6 addresses are always IPv4 here. */
export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/** A network: the network address (host bits zero) and the prefix length. */
export interface Cidr {
  readonly address: IpAddress;
  readonly prefix: number;
}

/** Why a network text was refused; `suggestion` is the network meant when only host bits were wrong. */
export class CidrError extends Error {
  constructor(message: string, readonly suggestion?: string) {
    super(message);
    this.name = 'CidrError';
  }
}

const maxPrefix = (ip: IpAddress) => (ip.kind() === 'ipv4' ? 32 : 128);

function unmap(ip: IpAddress): IpAddress {
  return ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
}

/**
 * Parses a literal address as written in configuration or a request:
 * dotted-quad IPv4 (no leading zeros, no short or numeric forms) or IPv6.
 * A zone id (`fe80::1%eth0`) is refused, or dropped with `zone: 'strip'`
 * (socket peer addresses).
 * @returns undefined when the text is not such an address
 */
export function parseIp(text: string, opts: { zone?: 'refuse' | 'strip' } = {}): IpAddress | undefined {
  let s = text.trim();
  const percent = s.indexOf('%');
  if (percent >= 0) {
    if (opts.zone !== 'strip') return undefined;
    s = s.slice(0, percent);
  }
  if (isIP(s) === 0) return undefined;
  return unmap(ipaddr.parse(s));
}

/** An address from its 4 or 16 network-order bytes (RADIUS NAS-IP attributes); undefined for other lengths. */
export function ipFromBytes(bytes: Uint8Array): IpAddress | undefined {
  if (bytes.length !== 4 && bytes.length !== 16) return undefined;
  return unmap(ipaddr.fromByteArray([...bytes]));
}

/** Canonical text: dotted IPv4, RFC 5952 IPv6 (lower case, longest zero run compressed). */
export function formatIp(ip: IpAddress): string {
  return ip.toString();
}

/** Same address (an IPv4-mapped IPv6 address equals its IPv4 address). */
export function sameIp(a: IpAddress, b: IpAddress): boolean {
  const x = unmap(a);
  const y = unmap(b);
  return x.kind() === y.kind() && x.toNormalizedString() === y.toNormalizedString();
}

/**
 * Parses `192.0.2.7`, `10.0.0.0/8`, `::1`, `2001:db8::/32` or an IPv4-mapped
 * network (`::ffff:10.0.0.0/104` = `10.0.0.0/8`). One rule for host bits:
 * they must be zero.
 * @throws CidrError naming the value (with `suggestion` when only host bits are wrong)
 */
export function parseCidr(text: string): Cidr {
  const value = text.trim();
  const parts = value.split('/');
  if (parts.length > 2) throw new CidrError(`not an IP address or network: ${value}`);
  const [addressText, prefixText] = parts as [string, string | undefined];
  const parsed = isIP(addressText) === 0 || addressText.includes('%') ? undefined : ipaddr.parse(addressText);
  if (!parsed) throw new CidrError(`not an IP address or network: ${value}`);
  let prefix = maxPrefix(parsed);
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > prefix) throw new CidrError(`prefix length must be 0..${prefix}: ${value}`);
    prefix = Number(prefixText);
  }
  let address: IpAddress = parsed;
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    if (prefix < 96) throw new CidrError(`prefix length of an IPv4-mapped network must be 96..128: ${value}`);
    address = (parsed as ipaddr.IPv6).toIPv4Address();
    prefix -= 96;
  }
  const network = networkAddress(address, prefix);
  if (network.toNormalizedString() !== address.toNormalizedString()) {
    const meant = formatCidr({ address: network, prefix });
    throw new CidrError(`host bits set in ${value}; did you mean ${meant}?`, meant);
  }
  return { address: network, prefix };
}

function networkAddress(ip: IpAddress, prefix: number): IpAddress {
  const bytes = ip.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i]! &= bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return ipaddr.fromByteArray(bytes);
}

/** `10.0.0.0/8`; a single address without `/32` or `/128`. */
export function formatCidr(cidr: Cidr): string {
  const ip = formatIp(cidr.address);
  return cidr.prefix === maxPrefix(cidr.address) ? ip : `${ip}/${cidr.prefix}`;
}

/** True when the network is one address (`/32`, `/128`). */
export function isSingleAddress(cidr: Cidr): boolean {
  return cidr.prefix === maxPrefix(cidr.address);
}

/** Whether `ip` lies in `cidr` (IPv4 never lies in an IPv6 network and vice versa). */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  const address = unmap(ip);
  if (address.kind() !== cidr.address.kind()) return false;
  return address.kind() === 'ipv4'
    ? (address as ipaddr.IPv4).match(cidr.address as ipaddr.IPv4, cidr.prefix)
    : (address as ipaddr.IPv6).match(cidr.address as ipaddr.IPv6, cidr.prefix);
}

export function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.prefix === b.prefix && sameIp(a.address, b.address);
}

// ------------------------------------------------------------------ classification

/** What kind of address a host is, for outgoing-connection policies. */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'carrier-grade NAT'
  | 'unique-local'
  | 'link-local'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved';

/** Classes never allowed as an outgoing host: no service lives there, or cloud metadata does (169.254.169.254). */
export const ALWAYS_REFUSED: ReadonlySet<AddressClass> = new Set(['unspecified', 'link-local', 'multicast', 'broadcast', 'reserved']);
/** Classes of the local site: refused when a policy denies private hosts. */
export const PRIVATE_CLASSES: ReadonlySet<AddressClass> = new Set(['loopback', 'private', 'carrier-grade NAT', 'unique-local']);

export interface EmbeddedIpv4 {
  ipv4: ipaddr.IPv4;
  via: 'IPv4-mapped' | 'IPv4-translated' | 'NAT64' | '6to4' | 'Teredo';
}

export interface Classification {
  class: AddressClass;
  /** Canonical text of the address classified (before taking out embedded IPv4). */
  address: string;
  /** The IPv4 address carried inside an IPv6 address, when that decided the class. */
  embedded?: { ipv4: string; via: EmbeddedIpv4['via'] };
}

/** The IPv4 address an IPv6 address stands for or tunnels to, if any. */
export function embeddedIpv4(ip: ipaddr.IPv6): EmbeddedIpv4 | undefined {
  const p = ip.parts;
  const low32 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const range = ip.range() as string;
  if (range === 'ipv4Mapped') return { ipv4: low32(p[6]!, p[7]!), via: 'IPv4-mapped' };
  if (range === 'rfc6145') return { ipv4: low32(p[6]!, p[7]!), via: 'IPv4-translated' };
  if (range === 'rfc6052' && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) return { ipv4: low32(p[6]!, p[7]!), via: 'NAT64' };
  if (range === '6to4') return { ipv4: low32(p[1]!, p[2]!), via: '6to4' };
  if (range === 'teredo') return { ipv4: low32(~p[6]! & 0xffff, ~p[7]! & 0xffff), via: 'Teredo' };
  return undefined;
}

const V4_CLASSES: Record<string, AddressClass> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT',
  private: 'private',
  reserved: 'reserved', // 192.0.0/24 (incl. 192.0.0.192 metadata), documentation nets, 240/4
  benchmarking: 'reserved',
};

const V6_CLASSES: Record<string, AddressClass> = {
  unspecified: 'unspecified',
  linkLocal: 'link-local',
  multicast: 'multicast',
  loopback: 'loopback',
  uniqueLocal: 'unique-local',
  deprecatedSiteLocal: 'unique-local',
  discard: 'reserved',
  benchmarking: 'reserved',
  reserved: 'reserved', // 2001::/23 (outside Teredo), 2001:db8::/32 documentation, 3fff::/20
  deprecatedOrchid: 'reserved',
  orchid2: 'reserved',
  droneRemoteIdProtocolEntityTags: 'reserved',
  segmentRouting: 'reserved',
  rfc6052: 'reserved', // local-use NAT64 64:ff9b:1::/48: the embedded address depends on the site's prefix
  ipv4Mapped: 'reserved', // only reached for malformed cases; mapped addresses are unmapped first
};

/** Classifies an address (text must be a literal; anything else is 'reserved'). */
export function classifyAddress(address: IpAddress | string): Classification {
  const ip = typeof address === 'string' ? parseIp(address) : address;
  if (!ip) return { class: 'reserved', address: String(address) };
  const text = formatIp(ip);
  if (ip.kind() === 'ipv4') return { class: V4_CLASSES[(ip as ipaddr.IPv4).range() as string] ?? 'public', address: text };
  const v6 = ip as ipaddr.IPv6;
  const embedded = embeddedIpv4(v6);
  if (embedded) {
    const inner = classifyAddress(embedded.ipv4).class;
    // mapped, translated and NAT64 addresses are the IPv4 host; 6to4/Teredo tunnel to it
    const decides = inner !== 'public' || embedded.via === 'IPv4-mapped' || embedded.via === 'IPv4-translated' || embedded.via === 'NAT64';
    if (decides) return { class: inner, address: text, embedded: { ipv4: formatIp(embedded.ipv4), via: embedded.via } };
    return { class: 'public', address: text };
  }
  const range = v6.range() as string;
  const known = V6_CLASSES[range];
  if (known) return { class: known, address: text };
  // deprecated IPv4-compatible addresses (::a.b.c.d) and the rest of ::/96
  if (v6.parts.slice(0, 6).every((part) => part === 0)) return { class: 'reserved', address: text };
  return { class: 'public', address: text };
}

/**
 * The address a host name stands for without asking DNS: a bracketed or
 * plain IPv6 literal, dotted IPv4, or a numeric IPv4 form the system
 * resolver also accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`).
 * @returns undefined for a real host name
 */
export function hostAddress(host: string): IpAddress | undefined {
  const ip = hostLiteral(host);
  return ip && unmap(ip);
}

/** hostAddress without unmapping, so a refusal can say "IPv4-mapped". */
function hostLiteral(host: string): IpAddress | undefined {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.') && /^[0-9a-fx.]+$/.test(h)) h = h.slice(0, -1);
  if (h.includes('%')) h = h.slice(0, h.indexOf('%'));
  if (isIP(h) !== 0) return ipaddr.parse(h);
  if (/^[0-9a-fx.]+$/.test(h) && ipaddr.IPv4.isValid(h)) return ipaddr.IPv4.parse(h);
  return undefined;
}

// ------------------------------------------------------------------ outgoing-host policy

/**
 * Which hosts configured outgoing connections (delivery providers, user
 * stores) may use (security item 21: no SSRF through config). Always
 * refused: unspecified, link-local (cloud metadata services live at
 * 169.254.169.254 / fe80::), multicast, broadcast and reserved addresses,
 * and well-known metadata names. With `denyPrivate`, loopback, RFC 1918,
 * CGNAT and unique-local too. With an allow-list, only the listed host
 * names (`*.example.com` for subdomains). The check runs on the name and
 * again on every address it resolves to, so a DNS answer cannot smuggle a
 * refused address in.
 */
export interface HostPolicy {
  /** Why a host name or literal address is refused, or null when allowed. */
  refuse(host: string): string | null;
  /** Why a resolved address is refused, or null. */
  refuseAddress(address: string): string | null;
  /** A `dns.lookup` replacement for sockets: resolves and checks. */
  lookup: typeof dnsLookup;
  /** Resolves a host and checks every address; rejects with the refusal (code ENOTALLOWED). */
  check(host: string): Promise<void>;
}

export interface HostPolicyOptions {
  /** Host names allowed; empty = any host not refused otherwise. @default [] */
  allowedHosts?: string[];
  /** Also refuse loopback and private ranges. @default false */
  denyPrivate?: boolean;
  /** Who the hosts are for, in messages ("providers", "user stores"). @default 'outgoing connections' */
  purpose?: string;
  /** Setting names quoted in messages. @default none */
  settings?: { allowedHosts?: string; denyPrivate?: string };
  /** The resolver asked for host names (an adapter for tests). @default dns.lookup */
  resolve?: typeof dnsLookup;
}

const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata', 'instance-data', 'metadata.azure.internal']);

/** `localhost` and `*.localhost` are loopback without asking DNS (RFC 6761). */
const isLocalhostName = (host: string) => host === 'localhost' || host.endsWith('.localhost');

/** `options` may be a function, read on every check, so a changed setting applies at once. */
export function createHostPolicy(options: HostPolicyOptions | (() => HostPolicyOptions) = {}): HostPolicy {
  const current = typeof options === 'function' ? options : () => options;

  const refuseIp = (shown: string, ip: IpAddress, o: HostPolicyOptions): string | null => {
    const c = classifyAddress(ip);
    const refused = ALWAYS_REFUSED.has(c.class) || (o.denyPrivate === true && PRIVATE_CLASSES.has(c.class));
    if (!refused) return null;
    const notes: string[] = [];
    if (c.embedded) notes.push(`${c.embedded.via} ${c.embedded.ipv4}`);
    else if (c.address !== shown) notes.push(c.address);
    notes.push(c.class);
    const base = `address ${shown} (${notes.join(', ')}) is not allowed for ${o.purpose ?? 'outgoing connections'}`;
    if (ALWAYS_REFUSED.has(c.class)) return base;
    return `${base} while ${o.settings?.denyPrivate ?? 'the deny-private switch'} is on`;
  };

  const refuseAddress = (address: string): string | null => {
    const ip = hostLiteral(address);
    const o = current();
    if (!ip) return `address ${address} is not an IP address`;
    return refuseIp(address.replace(/^\[|\]$/g, ''), ip, o);
  };

  const refuse = (rawHost: string): string | null => {
    const o = current();
    const host = rawHost.trim().replace(/^\[|\]$/g, '').toLowerCase();
    if (!host) return 'empty host';
    if (METADATA_NAMES.has(host)) return `host ${host} is not allowed for ${o.purpose ?? 'outgoing connections'}`;
    const allowed = (o.allowedHosts ?? []).map((h) => h.trim().toLowerCase()).filter(Boolean);
    if (allowed.length > 0 && !allowed.some((a) => matchHost(a, host))) {
      return `host ${host} is not in the allow-list${o.settings?.allowedHosts ? ` (${o.settings.allowedHosts})` : ''}`;
    }
    const ip = hostLiteral(host);
    if (ip) return refuseIp(host, ip, o);
    if (isLocalhostName(host)) return refuseIp(host, ipaddr.parse('127.0.0.1'), o);
    return null;
  };

  const lookup = ((hostname: string, opts: LookupOptions | number | Function, cb?: Function) => {
    const callback = (typeof opts === 'function' ? opts : cb) as (
      err: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void;
    const lookupOptions: LookupOptions = typeof opts === 'object' ? { ...opts } : typeof opts === 'number' ? { family: opts } : {};
    const why = refuse(hostname);
    if (why) return callback(Object.assign(new Error(why), { code: 'ENOTALLOWED' }), '', 0);
    (current().resolve ?? dnsLookup)(hostname, { ...lookupOptions, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as LookupAddress[];
      for (const a of list) {
        const bad = refuseAddress(a.address);
        if (bad) return callback(Object.assign(new Error(bad), { code: 'ENOTALLOWED' }), '', 0);
      }
      if (lookupOptions.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  }) as unknown as typeof dnsLookup;

  const check = (host: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const why = refuse(host);
      if (why) return reject(Object.assign(new Error(why), { code: 'ENOTALLOWED' }));
      if (hostAddress(host)) return resolve();
      lookup(host.replace(/^\[|\]$/g, ''), { all: true }, (err) => (err ? reject(err) : resolve()));
    });

  return { refuse, refuseAddress, lookup, check };
}

function matchHost(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/**
 * An unconnected TCP socket whose `connect(port, host)` asks the policy first:
 * a refused host (by name, literal or any resolved address) fails with an
 * 'error' event (code ENOTALLOWED) and no connection is attempted. For drivers
 * that take a socket factory (pg `stream`, mysql2 `stream`, ldapts
 * `createConnection`).
 */
export function checkedSocket(policy: HostPolicy): Socket {
  const socket = new Socket();
  const original = socket.connect.bind(socket);
  const connect = original as (options: { port: number; host: string; lookup: typeof dnsLookup }) => Socket;
  const guarded = (port: number | string, host?: string | (() => void), listener?: () => void): Socket => {
    if (typeof host === 'function') [host, listener] = [undefined, host];
    if (listener) socket.once('connect', listener);
    // connect(path): a unix-domain socket is local IPC, not a network host
    if (host === undefined && typeof port === 'string' && !/^\d+$/.test(port)) return (original as (path: string) => Socket)(port);
    if (host === undefined) host = 'localhost';
    const why = policy.refuse(host);
    if (why) {
      process.nextTick(() => socket.destroy(Object.assign(new Error(why), { code: 'ENOTALLOWED' })));
      return socket;
    }
    return connect({ port: Number(port), host: host.replace(/^\[|\]$/g, ''), lookup: policy.lookup });
  };
  socket.connect = guarded as unknown as Socket['connect'];
  return socket;
}

/** `checkedSocket(policy).connect(port, host)`. */
export function connectChecked(policy: HostPolicy, port: number, host: string): Socket {
  return checkedSocket(policy).connect(port, host);
}
