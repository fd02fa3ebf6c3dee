/** How values are written in LDAP: filter escaping (RFC 4515), GeneralizedTime, AD objectGUIDs, DNs. */

/**
 * Escapes a value for an LDAP filter (RFC 4515 §3): `* ( ) \ NUL` and the other
 * ASCII control characters. Non-ASCII characters stay as UTF-8 text (RFC 4515
 * allows them, and ldapts would turn `\xx` escapes of UTF-8 bytes into Latin-1).
 */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f || ch === '*' || ch === '(' || ch === ')' || ch === '\\') {
      out += `\\${code.toString(16).padStart(2, '0')}`;
    } else {
      out += ch;
    }
  }
  return out;
}

/** Escapes a search pattern, keeping `*` as a wildcard (admin user lists only). */
export function escapeFilterPattern(pattern: string): string {
  return pattern.split('*').map(escapeFilterValue).join('*');
}

/** `%(now)s` macro: current time as LDAP GeneralizedTime (UTC), e.g. `20261128120000Z`. */
export function generalizedTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** AD objectGUID bytes (little-endian fields) → canonical GUID text. */
export function guidToString(bytes: Buffer): string {
  if (bytes.length !== 16) return bytes.toString('hex');
  const h = (from: number, to: number, reverse: boolean) => {
    const part = Buffer.from(bytes.subarray(from, to));
    return (reverse ? part.reverse() : part).toString('hex');
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`;
}

/** Canonical GUID text → the 16 objectGUID bytes, or undefined. */
export function guidToBytes(guid: string): Buffer | undefined {
  const m = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/i.exec(guid.trim());
  if (!m) return undefined;
  const rev = (hex: string) => Buffer.from(hex, 'hex').reverse();
  return Buffer.concat([rev(m[1]), rev(m[2]), rev(m[3]), Buffer.from(m[4], 'hex'), Buffer.from(m[5], 'hex')]);
}

function normalizeDn(dn: string): string {
  return dn.split(',').map((p) => p.trim().toLowerCase()).join(',');
}

/** True when `dn` is `base` or below it (RDNs compared case-insensitively). */
export function isUnderBase(dn: string, base: string): boolean {
  const d = normalizeDn(dn);
  const b = normalizeDn(base);
  return d === b || d.endsWith(`,${b}`);
}
