import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';

/**
 * Which hosts provider configs may point at (security item 21: no SSRF
 * through config). Always refused: unspecified, link-local (cloud metadata
 * services live at 169.254.169.254 / fe80::), multicast and broadcast
 * addresses. With `denyPrivate`, loopback and RFC 1918 / ULA too. With an
 * allow-list, only the listed host names (`*.example.com` for subdomains).
 * The check runs on the name and again on every address it resolves to, so
 * a DNS answer cannot smuggle a refused address in.
 */
export interface HostPolicy {
  /** Why a host name or literal address is refused, or null when allowed. */
  refuse(host: string): string | null;
  /** Why a resolved address is refused, or null. */
  refuseAddress(address: string): string | null;
  /** A `dns.lookup` replacement for sockets: resolves and checks. */
  lookup: typeof dnsLookup;
}

export interface HostPolicyOptions {
  /** Host names allowed; empty = any host not refused otherwise. @default [] */
  allowedHosts?: string[];
  /** Also refuse loopback and private ranges. @default false */
  denyPrivate?: boolean;
}

const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata', 'instance-data']);

export function createHostPolicy(options: HostPolicyOptions = {}): HostPolicy {
  const allowed = (options.allowedHosts ?? []).map((h) => h.trim().toLowerCase()).filter(Boolean);
  const denyPrivate = options.denyPrivate ?? false;

  const refuseAddress = (address: string): string | null => {
    const kind = classifyAddress(address);
    if (kind === 'always') return `address ${address} is not allowed for providers`;
    if (kind === 'private' && denyPrivate) return `private address ${address} is not allowed (DeliveryDenyPrivateHosts)`;
    return null;
  };

  const refuse = (rawHost: string): string | null => {
    const host = rawHost.replace(/^\[|\]$/g, '').toLowerCase();
    if (!host) return 'empty host';
    if (METADATA_NAMES.has(host)) return `host ${host} is not allowed for providers`;
    if (allowed.length > 0 && !allowed.some((a) => matchHost(a, host))) {
      return `host ${host} is not in the allow-list (DeliveryAllowedHosts)`;
    }
    if (isIP(host)) return refuseAddress(host);
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
    dnsLookup(hostname, { ...lookupOptions, all: true }, (err, addresses) => {
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

  return { refuse, refuseAddress, lookup };
}

function matchHost(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** 'always' = never a provider; 'private' = loopback / private ranges; 'public' otherwise. */
export function classifyAddress(address: string): 'always' | 'private' | 'public' {
  const v = isIP(address);
  if (v === 4) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    if (a === 0 || a >= 224) return 'always'; // unspecified, multicast, reserved, broadcast
    if (a === 169 && b === 254) return 'always'; // link-local, cloud metadata
    if (a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private';
    if (a === 100 && b >= 64 && b <= 127) return 'private'; // CGNAT
    return 'public';
  }
  if (v === 6) {
    const lower = address.toLowerCase();
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    if (mapped) return classifyAddress(mapped[1]!);
    if (lower === '::') return 'always';
    if (/^fe[89ab]/.test(lower) || lower.startsWith('ff')) return 'always'; // link-local, multicast
    if (lower === '::1' || /^f[cd]/.test(lower)) return 'private';
    return 'public';
  }
  return 'always';
}
