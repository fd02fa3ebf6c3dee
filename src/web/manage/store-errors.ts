import { inputOf, labelOf, type FormValues, type StoreType } from './store-forms.ts';

/**
 * Plain words for what went wrong with a user store: the API's refusals of a configuration
 * ("Invalid parameter 'LDAPURI': …") and the failures a connection test reports (refused,
 * timed out, StartTLS missing, wrong bind password, untrusted certificate, …), each with the
 * input it concerns so the form shows it next to that field. The technical text stays
 * available as the detail.
 */

export interface Problem {
  /** A sentence for people. */
  text: string;
  /** The form input it concerns (shown next to it), if any. */
  field?: string;
  /** The LDAP server it concerns (a comma list of URIs is tried in order). */
  server?: string;
  /** The message as the API gave it. */
  detail: string;
}

const capital = (s: string) => `${s[0]!.toUpperCase()}${s.slice(1)}`;
const sentence = (s: string) => `${capital(s.trim())}${/[.!?)]$/.test(s.trim()) ? '' : '.'}`;

/** Seconds of a TIMEOUT value ("5;10" = connect 5 s, response 10 s), with the resolver's defaults. */
function timeouts(type: StoreType, value: string | undefined): [number, number] {
  if (type === 'sqlresolver') {
    const n = Number(value);
    return Number.isFinite(n) && n > 0 ? [n, n] : [5, 5];
  }
  const parts = (value ?? '').split(/[;,]/).map((p) => Number(p.trim()));
  const pick = (n: number | undefined, d: number) => (n !== undefined && Number.isFinite(n) && n > 0 ? Math.min(n, 120) : d);
  if (!value || value.trim() === '' || value.trim() === '-1') return [5, 10];
  return [pick(parts[0], 5), pick(parts[1] ?? parts[0], 10)];
}

function hostOf(server: string | undefined, values: FormValues, why: string): string {
  const fromError = /(?:ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH) (\[?[0-9a-fA-F:.]+\]?:\d+)/.exec(why)?.[1];
  if (fromError) return fromError;
  const uri = server ?? values.LDAPURI?.split(',')[0]?.trim() ?? '';
  try {
    const u = new URL(uri);
    return `${u.hostname}:${u.port || (u.protocol === 'ldaps:' ? '636' : '389')}`;
  } catch {
    return values.Server ? `${values.Server}${values.Port ? `:${values.Port}` : ''}` : 'the server';
  }
}

/** One failure reason (of one server) in plain words. */
function explain(type: StoreType, why: string, values: FormValues, server?: string): Problem {
  const ldap = type === 'ldapresolver';
  const connectField = ldap ? 'LDAPURI' : type === 'sqlresolver' ? (values.Connect ? 'Connect' : 'Server') : 'fileName';
  // the technical text only when it says more than the sentence
  const same = (a: string) => a.toLowerCase().replace(/[.\s]+$/, '');
  const p = (text: string, field?: string): Problem => ({ text, ...(field ? { field } : {}), ...(server ? { server } : {}), detail: same(text) === same(why) ? '' : why });
  if (/does not support StartTLS/i.test(why)) return p('The server does not support StartTLS: use ldaps:// or set EnforceTLS off.', 'EnforceTLS');
  if (/service bind failed|invalid BINDDN\/BINDPW|InvalidCredentials/i.test(why)) return p('Wrong bind DN or password.', 'BINDPW');
  if (/password authentication failed|Access denied for user/i.test(why)) return p('Wrong database user or password.', 'Password');
  if (/ECONNREFUSED/.test(why)) return p(`Cannot connect to ${hostOf(server, values, why)} (connection refused).`, connectField);
  if (/ENOTFOUND|EAI_AGAIN/.test(why)) {
    const host = /(?:ENOTFOUND|EAI_AGAIN) (\S+)/.exec(why)?.[1] ?? hostOf(server, values, why);
    return p(`Cannot find the host ${host.replace(/:\d+$/, '')} (no such name in DNS).`, connectField);
  }
  if (/Connection timeout|ETIMEDOUT|timed out|timeout expired|connection timeout/i.test(why)) {
    const [connect, response] = timeouts(type, values.TIMEOUT);
    const waiting = /Operation timed out|query|statement/i.test(why) && !/Connection timeout|connect/i.test(why);
    return p(`Timed out after ${waiting ? response : connect} s ${waiting ? 'waiting for an answer from' : 'connecting to'} ${hostOf(server, values, why)}.`, ldap ? 'TIMEOUT' : connectField);
  }
  if (/altname|Hostname\/IP does not match|does not match certificate/i.test(why)) {
    return p('Certificate not trusted: it was issued for another host name; use the name the certificate names in the URI.', connectField);
  }
  if (/certificate|CERT_|self[- ]signed|unable to verify|unable to get (local )?issuer/i.test(why)) {
    return p('Certificate not trusted: paste the certificate of the CA that issued it under "CA certificate (PEM)".', 'CACERTIFICATE');
  }
  if (/ECONNRESET|socket hang up|EPIPE|wrong version number|packet length too long|Connection closed/i.test(why)) {
    return p('The server closed the connection: check that the URI matches the port (ldaps:// for 636, ldap:// for 389).', connectField);
  }
  if (/is not allowed for user stores/.test(why)) return p(`The host is not allowed for user stores: ${why.replace(/^.*?address/, 'address')}`, connectField);
  const retry = /failed recently; next try in (\d+) s/.exec(why);
  if (retry) return p(`Every server failed a moment ago; otpd asks them again in ${retry[1]} s (BLOCK_SECONDS).`, 'LDAPURI');
  const file = /cannot read (.+): (ENOENT|EACCES|EISDIR)/.exec(why);
  if (file) return p(file[2] === 'ENOENT' ? `The file ${file[1]} does not exist.` : file[2] === 'EACCES' ? `otpd may not read the file ${file[1]}.` : `${file[1]} is a directory, not a file.`, 'fileName');
  if (/no such table|relation .* does not exist|Table .* doesn't exist/i.test(why)) return p('The table does not exist.', 'Table');
  if (/no such column|Unknown column|column .* does not exist/i.test(why)) return p('A column of the mapping does not exist in the table.', 'Map.userid');
  if (/unable to open database file|SQLITE_CANTOPEN|directory does not exist/i.test(why)) return p('Cannot open the SQLite file.', 'Connect');
  if (/database .* does not exist|Unknown database/i.test(why)) return p('The database does not exist.', values.Connect ? 'Connect' : 'Database');
  return p(sentence(why));
}

/** The failures of a connection test (`error` of `/system/testResolver`), one per server tried. */
export function testProblems(type: StoreType, error: string, values: FormValues): Problem[] {
  const reason = error.replace(/^user store unavailable: [^:]*: /, '');
  const parts = reason.split(/; (?=ldaps?:\/\/)/);
  return parts.map((part) => {
    const m = /^(ldaps?:\/\/[^\s/;]+?)\/?: (.*)$/s.exec(part);
    const why = (m ? m[2]! : part).replace(/^user store unavailable: [^:]*: /, '');
    return explain(type, why, values, m?.[1]);
  });
}

/** A refusal of `/system/setResolver` or `/system/testResolver` (an OtpdError message) in plain words, with its input. */
export function refusalProblem(type: StoreType, message: string, values: FormValues): Problem {
  // ERR2300 lists every bad key ("Invalid resolver configuration: LDAPURI: why; TIMEOUT: why"): show the first
  const listed = /^Invalid resolver configuration: ([A-Za-z_.]+): (.*?)(?:; [A-Za-z_.]+: .*)?$/s.exec(message);
  const invalid = listed ? [message, listed[1]!, listed[2]!] : /^Invalid parameter '([^']+)': (.*)$/s.exec(message);
  const missing = /^Missing parameter: '([^']+)'$/.exec(message);
  if (invalid || missing) {
    const param = (invalid ?? missing)![1]!;
    const field = inputOf(type, param);
    const label = field ? labelOf(type, field) : param;
    if (missing) return { text: 'Required.', ...(field ? { field } : {}), detail: message };
    const why = invalid![2]!;
    const bad = /^(?:use ldap:\/\/ or ldaps:\/\/|not a URI): (.*)$/.exec(why);
    if (field === 'LDAPURI' && bad) return { text: `${bad[1]} is not an LDAP address: write ldap://host:port or ldaps://host:port.`, field, detail: message };
    if (field === 'LDAPURI' && /^host and port only/.test(why)) return { text: 'Write only the host and port, without a path: ldap://host:port.', field, detail: message };
    if (/is not allowed for user stores/.test(why)) return { ...explain(type, why, values), field: field ?? 'LDAPURI' };
    return { text: sentence(why), ...(field ? { field } : {}), detail: message };
  }
  if (/already exists/.test(message)) return { text: 'A user store with this name exists already: choose another name.', field: 'name', detail: message };
  if (/^user store unavailable/.test(message)) return testProblems(type, message, values)[0]!;
  return { text: sentence(message), detail: message };
}
