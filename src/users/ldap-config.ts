import { FilterParser } from 'ldapts';
import { Type, type Static } from 'typebox';
import { Digits, invalidResolverConfig, parseFieldMap, TrueFalse } from './config.ts';
import type { StoredResolverConfig } from './types.ts';

/**
 * Configuration of the LDAP / Active Directory user store (LinOTP type `ldapresolver`,
 * spec 7.1): its schema, the UI presets, the checks a schema cannot express, and the
 * settings the store runs with.
 */

/** UI presets of spec 7.1, selectable with `PRESET=openldap|ad` in setResolver. */
export const LDAP_PRESETS: Record<'openldap' | 'ad', Record<string, string>> = {
  openldap: {
    LOGINNAMEATTRIBUTE: 'uid',
    LDAPSEARCHFILTER: '(uid=*)(objectClass=inetOrgPerson)',
    LDAPFILTER: '(&(uid=%s)(objectClass=inetOrgPerson))',
    USERINFO: JSON.stringify({
      username: 'uid', phone: 'telephoneNumber', mobile: 'mobile', email: 'mail', surname: 'sn', givenname: 'givenName',
    }),
    UIDTYPE: 'entryUUID',
  },
  ad: {
    LOGINNAMEATTRIBUTE: 'sAMAccountName',
    LDAPSEARCHFILTER: '(sAMAccountName=*)(objectClass=user)',
    // otpd addition: disabled accounts (userAccountControl bit 2) are not found.
    LDAPFILTER: '(&(sAMAccountName=%s)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))',
    USERINFO: JSON.stringify({
      username: 'sAMAccountName', phone: 'telephoneNumber', mobile: 'mobile', email: 'mail', surname: 'sn',
      givenname: 'givenName', description: 'description',
    }),
    UIDTYPE: 'objectGUID',
  },
};

const INFO_FIELD = /^[A-Za-z][A-Za-z0-9_]*$/;
const ATTRIBUTE = /^[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*$|^\d+(\.\d+)+$/;

export const ldapConfigSchema = Type.Object({
  LDAPURI: Type.String({ description: 'ldap:// or ldaps:// URI; a comma list is tried in order (failover)' }),
  LDAPBASE: Type.String({ description: 'search base DN' }),
  BINDDN: Type.Optional(Type.String({ description: 'service account DN; empty = anonymous search' })),
  BINDPW: Type.Optional(Type.String({ secret: true, description: 'service account password (stored encrypted)' })),
  LOGINNAMEATTRIBUTE: Type.String({
    pattern: ATTRIBUTE.source, errorMessage: 'not an attribute name', description: 'attribute holding the login name, e.g. uid or sAMAccountName',
  }),
  LDAPFILTER: Type.String({ description: 'filter for one user; %s = the escaped login; %(now)s = current GeneralizedTime' }),
  LDAPSEARCHFILTER: Type.String({ description: 'filter parts for listing users, used as (&<filter>)' }),
  USERINFO: Type.String({ description: 'JSON map of otpd user fields to LDAP attributes' }),
  UIDTYPE: Type.String({
    default: 'DN', pattern: ATTRIBUTE.source, errorMessage: 'DN, entryUUID, objectGUID or an attribute name',
    description: 'user id: DN, entryUUID, objectGUID (or GUID) or another attribute name',
  }),
  EnforceTLS: TrueFalse({ default: 'True', description: 'StartTLS on ldap:// URIs' }),
  only_trusted_certs: TrueFalse({ default: 'True', description: 'verify the server certificate (name and chain)' }),
  CACERTIFICATE: Type.Optional(Type.String({
    pattern: '-----BEGIN CERTIFICATE-----', errorMessage: 'expected PEM certificate(s)', description: 'PEM CA certificate(s) to trust instead of the system store',
  })),
  NOREFERRALS: TrueFalse({ default: 'True', description: 'accepted for compatibility; otpd never chases referrals' }),
  TIMEOUT: Type.String({ default: '5;10', description: 'seconds: "n" or "connect;response"; -1 = default; at most 120' }),
  SIZELIMIT: Digits({ default: '500', description: 'maximum entries for user lists and the resolver test' }),
  BLOCK_SECONDS: Digits({ default: '30', description: 'how long a failing server is skipped (circuit breaker)' }),
  readonly: Type.Optional(TrueFalse({ description: 'accepted for compatibility' })),
});

export type LdapConfig = Static<typeof ldapConfigSchema>;

/** What the store runs with, read from a checked config. */
export interface LdapSettings {
  uris: string[];
  base: string;
  bindDn: string;
  bindPw: string;
  loginAttribute: string;
  filter: string;
  searchFilter: string;
  userInfo: Record<string, string>;
  uidType: string;
  enforceTls: boolean;
  onlyTrustedCerts: boolean;
  ca?: string;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  sizeLimit: number;
  blockMs: number;
}

const splitUris = (list: string): string[] => list.split(',').map((u) => u.trim()).filter(Boolean);

/** `TIMEOUT`: connect and response timeout in milliseconds; ≤ 0 parts take the default, at most 120 s. */
function parseTimeout(value: string): [number, number] {
  const fallback: [number, number] = [5000, 10000];
  if (value.trim() === '' || value.trim() === '-1') return fallback;
  const parts = value.split(/[;,]/).map((p) => Number(p.trim()));
  if (parts.some((p) => !Number.isFinite(p))) throw invalidResolverConfig('TIMEOUT', 'expected seconds: "n" or "connect;response"');
  const clamp = (s: number, d: number) => (s <= 0 ? d : Math.min(s, 120) * 1000);
  return [clamp(parts[0]!, fallback[0]), clamp(parts[1] ?? parts[0]!, fallback[1])];
}

/** `USERINFO`: otpd user field → LDAP attribute. */
function userInfoMap(raw: string): Record<string, string> {
  return parseFieldMap('USERINFO', raw, INFO_FIELD, { pattern: ATTRIBUTE, what: 'an attribute name' });
}

/** Before the schema: the preset fills what the request leaves empty; the URI list and USERINFO are written canonically. */
export function prepareLdapConfig(config: StoredResolverConfig, input: ReadonlyMap<string, string>): StoredResolverConfig {
  const out = { ...config };
  const preset = input.get('preset')?.toLowerCase();
  if (preset !== undefined && preset !== '') {
    if (preset !== 'openldap' && preset !== 'ad') throw invalidResolverConfig('PRESET', 'use openldap or ad');
    for (const [k, v] of Object.entries(LDAP_PRESETS[preset])) out[k] ||= v;
  }
  if (out.LDAPURI !== undefined) {
    const uris = splitUris(out.LDAPURI).join(',');
    if (uris) out.LDAPURI = uris;
    else delete out.LDAPURI;
  }
  if (out.USERINFO !== undefined) {
    try {
      out.USERINFO = JSON.stringify(JSON.parse(out.USERINFO));
    } catch {
      // left as sent: the check names the problem
    }
  }
  return out;
}

/** After the schema: URI schemes, filter syntax, USERINFO, TIMEOUT. */
export function checkLdapConfig(c: LdapConfig): void {
  for (const uri of splitUris(c.LDAPURI)) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw invalidResolverConfig('LDAPURI', `not a URI: ${uri}`);
    }
    if (url.protocol !== 'ldap:' && url.protocol !== 'ldaps:') throw invalidResolverConfig('LDAPURI', `use ldap:// or ldaps://: ${uri}`);
    if (url.pathname !== '' && url.pathname !== '/') throw invalidResolverConfig('LDAPURI', `host and port only: ${uri}`);
  }
  if (!c.LDAPFILTER.includes('%s')) throw invalidResolverConfig('LDAPFILTER', 'must contain %s for the login');
  try {
    FilterParser.parseString(c.LDAPFILTER.replaceAll('%(now)s', '20000101000000Z').replaceAll('%s', 'x'));
  } catch (e) {
    throw invalidResolverConfig('LDAPFILTER', `not a valid LDAP filter (${(e as Error).message})`);
  }
  try {
    FilterParser.parseString(`(&${c.LDAPSEARCHFILTER})`);
  } catch (e) {
    throw invalidResolverConfig('LDAPSEARCHFILTER', `not a valid LDAP filter (${(e as Error).message})`);
  }
  userInfoMap(c.USERINFO);
  parseTimeout(c.TIMEOUT);
}

/** The store's settings from a checked config (defaults filled in). */
export function ldapSettings(c: LdapConfig): LdapSettings {
  const [connectTimeoutMs, responseTimeoutMs] = parseTimeout(c.TIMEOUT);
  return {
    uris: splitUris(c.LDAPURI),
    base: c.LDAPBASE,
    bindDn: c.BINDDN ?? '',
    bindPw: c.BINDPW ?? '',
    loginAttribute: c.LOGINNAMEATTRIBUTE,
    filter: c.LDAPFILTER,
    searchFilter: c.LDAPSEARCHFILTER,
    userInfo: userInfoMap(c.USERINFO),
    uidType: c.UIDTYPE,
    enforceTls: c.EnforceTLS === 'True',
    onlyTrustedCerts: c.only_trusted_certs === 'True',
    ca: c.CACERTIFICATE?.trim() ? c.CACERTIFICATE : undefined,
    connectTimeoutMs,
    responseTimeoutMs,
    sizeLimit: Number(c.SIZELIMIT) || 500,
    blockMs: Number(c.BLOCK_SECONDS) * 1000,
  };
}
