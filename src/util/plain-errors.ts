/**
 * Network and TLS failures in plain words for log lines and delivery records, the code kept in
 * parentheses for searching: "connection refused 127.0.0.1:389 (ECONNREFUSED)" instead of
 * "ECONNREFUSED connect ECONNREFUSED 127.0.0.1:389". Only the error's code, address, port,
 * host name and first message line are used: never a request, a body or a credential.
 */
export function plainError(e: unknown): string {
  const [words, code] = inWords(e);
  return code !== '' && !words.includes(code) ? `${words} (${code})` : words;
}

/** Codes a wrapper error (nodemailer's ESOCKET, ECONNECTION) may carry in its message. */
const SOCKET_CODES = /\b(ECONNREFUSED|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)\b(?: (\S+))?/;

/** The words and the code they stand for. */
function inWords(e: unknown): [string, string] {
  const err = (e ?? {}) as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string; host?: string };
  const message = String(err.message ?? e).split('\n')[0]!.trim();
  const inner = SOCKET_CODES.exec(message);
  const code = err.code && !['ESOCKET', 'ECONNECTION'].includes(err.code) ? err.code : inner?.[1] ?? err.code ?? '';
  const at = err.address ? `${err.address}${err.port ? `:${err.port}` : ''}` : inner?.[2] && /:\d+$/.test(inner[2]) ? inner[2] : '';
  const host = err.hostname ?? err.host ?? (code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? inner?.[2] ?? '' : '');
  return [words(code, message, at, host), code];
}

function words(code: string, message: string, at: string, host: string): string {
  switch (code) {
    case 'ECONNREFUSED': return `connection refused${at ? ` ${at}` : ''}`;
    case 'ETIMEDOUT': return at || /^connect\b/.test(message) ? `connection timed out${at ? ` ${at}` : ''}` : message;
    case 'ECONNRESET': return `connection reset by the server${at ? ` ${at}` : ''}`;
    case 'EHOSTUNREACH': return `host unreachable${at ? ` ${at}` : ''}`;
    case 'ENETUNREACH': return `network unreachable${at ? ` ${at}` : ''}`;
    case 'ENOTFOUND': return `host name not found${host ? `: ${host}` : ''}`;
    case 'EAI_AGAIN': return `host name lookup failed (temporary DNS failure)${host ? `: ${host}` : ''}`;
    case 'EPIPE': return 'connection closed by the server';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN': return 'TLS certificate not trusted: self-signed (give the CA certificate)';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY': return 'TLS certificate not trusted: unknown issuer (give the CA certificate)';
    case 'CERT_HAS_EXPIRED': return 'TLS certificate expired';
    case 'ERR_TLS_CERT_ALTNAME_INVALID': return `TLS certificate is for another host name${host ? ` than ${host}` : ''}`;
  }
  // Node's HTTP parser (llhttp): the bytes that came back are not an HTTP answer
  if (code.startsWith('HPE_')) return 'the server\'s answer is not HTTP';
  if (/wrong version number/i.test(message)) return 'TLS handshake failed: the server does not speak TLS on this port (wrong version number)';
  return message;
}
