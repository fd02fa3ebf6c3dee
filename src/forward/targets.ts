/**
 * The targets of policy authentication `forward_server` (spec 3.1): the old LinOTP server(s)
 * a switch-over forwards requests to, tried in order. otpd speaks LinOTP's HTTP API to them:
 * `linotp://host[:port][/path]` (https), `https://…` or `http://…`, path default
 * `/validate/check`, query `timeout` in seconds (1–30, default 5). LinOTP's `radius://` targets
 * are refused: a RADIUS request to otpd is forwarded over HTTP like any other.
 */
export interface ForwardTarget {
  /** The URL requests go to. */
  url: string;
  timeoutMs: number;
}

const DEFAULT_TIMEOUT_S = 5;

/** Parses the policy value; throws an Error whose message says what is wrong. */
export function parseForwardTargets(value: string): ForwardTarget[] {
  const parts = value.split(/[\s,]+/).filter(Boolean);
  if (parts.length === 0) throw new Error('name at least one server: linotp://host[:port][/path] or https://…');
  return parts.map((part) => {
    if (/^radius:/i.test(part)) throw new Error(`'${part.replace(/\/\/[^@/]*@/, '//…@')}': otpd forwards over LinOTP's HTTP API only (linotp://, https://, http://); radius:// targets are not supported`);
    const m = /^(linotp|https|http):\/\/(.+)$/i.exec(part);
    if (!m) throw new Error(`'${part}' is no server: use linotp://host[:port][/path], https://… or http://…`);
    let url: URL;
    try {
      url = new URL(`${m[1]!.toLowerCase() === 'http' ? 'http' : 'https'}://${m[2]}`);
    } catch {
      throw new Error(`'${part}' is no valid URL`);
    }
    if (url.username || url.password) throw new Error(`'${url.host}': no credentials in the URL (the old server authenticates /validate/check by itself)`);
    let timeout = DEFAULT_TIMEOUT_S;
    const t = url.searchParams.get('timeout');
    if (t !== null) {
      if (!/^\d{1,2}$/.test(t) || Number(t) < 1 || Number(t) > 30) throw new Error(`'${part}': timeout must be 1 to 30 seconds`);
      timeout = Number(t);
      url.searchParams.delete('timeout');
    }
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/validate/check';
    return { url: url.toString(), timeoutMs: timeout * 1000 };
  });
}

/** The catalogue check: undefined when the value is usable, else why not. */
export function forwardTargetsProblem(value: string): string | undefined {
  try {
    parseForwardTargets(value);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
