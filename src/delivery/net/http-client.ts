import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { HostPolicy } from '../../util/net.ts';
import { plainError } from '../../util/plain-errors.ts';

/**
 * The one HTTP client of the provider modules: node:http underneath, no
 * keep-alive, timeouts always (connect and whole exchange), redirects never
 * followed (a 3xx is returned as it is), host policy checked on the name and
 * on every resolved address, optional HTTP proxy (CONNECT for https), basic
 * or digest authentication, response bodies capped.
 */
export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST';
  /** Appended to the URL's query string. */
  query?: Record<string, string>;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  /** Sent as application/json. */
  json?: unknown;
  headers?: Record<string, string>;
  auth?: { username: string; password: string; type: 'basic' | 'digest' };
  /** `http://[user:pw@]host:port` of an HTTP proxy. */
  proxy?: string;
  /** Extra CA certificates (PEM) to trust instead of the system store. */
  ca?: Buffer;
  /** false disables certificate verification (LinOTP `SERVER_CERTIFICATE: false`). @default true */
  rejectUnauthorized?: boolean;
  clientCert?: { cert: Buffer; key?: Buffer };
  connectTimeoutMs: number;
  /** Deadline for the whole exchange, including the body. */
  timeoutMs: number;
  signal: AbortSignal;
  hosts: HostPolicy;
  /** @default 65536 */
  maxBodyBytes?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export type HttpFailure = 'timeout' | 'connect' | 'host' | 'protocol' | 'aborted' | 'tls';

export class HttpError extends Error {
  constructor(readonly failure: HttpFailure, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export async function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  const first = await exchange(req, undefined);
  if (first.status === 401 && req.auth?.type === 'digest') {
    const challenge = headerValue(first.headers['www-authenticate']);
    if (challenge && /^digest\s/i.test(challenge)) {
      const target = buildUrl(req);
      const authorization = digestAuthorization(challenge, req.method, target.pathname + target.search, req.auth);
      return exchange(req, authorization);
    }
  }
  return first;
}

function buildUrl(req: HttpRequest): URL {
  const url = new URL(req.url);
  for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.append(k, v);
  return url;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.find((x) => /^digest/i.test(x)) ?? v[0] : v;
}

function exchange(req: HttpRequest, authorization: string | undefined): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    let url: URL;
    try {
      url = buildUrl(req);
    } catch {
      return reject(new HttpError('protocol', 'invalid URL'));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return reject(new HttpError('host', `URL scheme ${url.protocol} is not allowed (http/https only)`));
    }
    const hostRefusal = req.hosts.refuse(url.hostname);
    if (hostRefusal) return reject(new HttpError('host', hostRefusal));

    const headers: Record<string, string> = { 'user-agent': 'otpd', ...lowerKeys(req.headers ?? {}) };
    let body: Buffer | undefined;
    if (req.form) {
      body = Buffer.from(new URLSearchParams(req.form).toString());
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
    } else if (req.json !== undefined) {
      body = Buffer.from(JSON.stringify(req.json));
      headers['content-type'] ??= 'application/json';
    }
    if (body) headers['content-length'] = String(body.length);

    // Credentials: explicit ones win over user:pw@ in the URL (LinOTP).
    const urlUser = decodeURIComponent(url.username);
    const urlPass = decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
    if (authorization) headers.authorization = authorization;
    else if (req.auth && req.auth.type === 'basic') headers.authorization = basic(req.auth.username, req.auth.password);
    else if (!req.auth && urlUser) headers.authorization = basic(urlUser, urlPass);

    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    let request: http.ClientRequest | undefined;
    const fail = (err: HttpError) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      req.signal.removeEventListener('abort', onAbort);
      request?.destroy();
      reject(err);
    };
    const done = (res: HttpResponse) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      req.signal.removeEventListener('abort', onAbort);
      resolve(res);
    };
    const onAbort = () => fail(new HttpError('aborted', 'request aborted'));
    if (req.signal.aborted) return onAbort();
    req.signal.addEventListener('abort', onAbort, { once: true });
    timers.push(setTimeout(() => fail(new HttpError('timeout', `no complete answer within ${req.timeoutMs} ms`)), req.timeoutMs));
    let connected = false;
    timers.push(
      setTimeout(() => {
        if (!connected) fail(new HttpError('timeout', `connect timeout after ${req.connectTimeoutMs} ms`));
      }, req.connectTimeoutMs),
    );

    const tlsOptions: tls.ConnectionOptions = {
      servername: isIpLiteral(url.hostname) ? undefined : url.hostname,
      rejectUnauthorized: req.rejectUnauthorized ?? true,
      ...(req.ca ? { ca: req.ca } : {}),
      ...(req.clientCert ? { cert: req.clientCert.cert, key: req.clientCert.key } : {}),
    };
    const isHttps = url.protocol === 'https:';
    const port = Number(url.port || (isHttps ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, '');

    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const max = req.maxBodyBytes ?? 65536;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= max) chunks.push(c);
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      // the server closed the connection after the headers, before the whole body (Node: "aborted")
      res.on('error', () => {
        const length = res.headers['content-length'];
        fail(new HttpError('connect', `the connection closed in the middle of the answer (HTTP ${res.statusCode}, ${size}${length ? ` of ${length}` : ''} body bytes)`));
      });
    };
    const onError = (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOTALLOWED') return fail(new HttpError('host', e.message));
      if (isTlsVerificationError(e)) return fail(new HttpError('tls', `TLS verification failed: ${plainError(e)}`));
      // a plain-HTTP server behind an https:// URL: a configuration error, not an outage
      if (isHttps && /wrong version number/i.test(e.message ?? '')) return fail(new HttpError('tls', `${plainError(e)}: is the URL's scheme right (http:// or https://)?`));
      fail(new HttpError('connect', plainError(e)));
    };
    const markConnected = (socket: Socket) => {
      const set = () => {
        connected = true;
      };
      if (!socket.connecting) set();
      else socket.once(isHttps && !req.proxy ? 'secureConnect' : 'connect', set);
    };

    const send = (options: http.RequestOptions, viaTls: boolean) => {
      request = (viaTls ? https : http).request({ ...options, method: req.method, headers, agent: false }, onResponse);
      request.on('error', onError);
      request.on('socket', (s) => markConnected(s as Socket));
      request.end(body);
    };

    if (!req.proxy) {
      send({ host, port, path: url.pathname + url.search, lookup: req.hosts.lookup, ...(isHttps ? tlsOptions : {}) }, isHttps);
      return;
    }

    let proxy: URL;
    try {
      proxy = new URL(req.proxy);
    } catch {
      return fail(new HttpError('protocol', 'invalid PROXY URL'));
    }
    const proxyRefusal = req.hosts.refuse(proxy.hostname);
    if (proxyRefusal) return fail(new HttpError('host', proxyRefusal));
    const proxyHeaders: Record<string, string> = {};
    if (proxy.username) proxyHeaders['proxy-authorization'] = basic(decodeURIComponent(proxy.username), decodeURIComponent(proxy.password));
    const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
    const proxyPort = Number(proxy.port || 8080);
    if (!isHttps) {
      Object.assign(headers, proxyHeaders, { host: url.host });
      send({ host: proxyHost, port: proxyPort, path: url.toString(), lookup: req.hosts.lookup }, false);
      return;
    }
    const connectReq = http.request({
      host: proxyHost,
      port: proxyPort,
      method: 'CONNECT',
      path: `${host}:${port}`,
      headers: { ...proxyHeaders, host: `${host}:${port}` },
      lookup: req.hosts.lookup,
      agent: false,
    });
    request = connectReq;
    connectReq.on('error', onError);
    connectReq.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return fail(new HttpError('connect', `proxy refused CONNECT with status ${res.statusCode}`));
      }
      const secure = tls.connect({ ...tlsOptions, socket });
      secure.once('secureConnect', () => {
        connected = true;
      });
      secure.on('error', (e) => onError(e));
      request = https.request(
        { host, port, path: url.pathname + url.search, method: req.method, headers, agent: false, createConnection: () => secure },
        onResponse,
      );
      request.on('error', onError);
      request.end(body);
    });
    connectReq.end();
  });
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), String(v)]));
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':') || host.startsWith('[');
}

/** RFC 7616 digest response (MD5 / SHA-256, qop=auth or none). */
export function digestAuthorization(
  challenge: string,
  method: string,
  uri: string,
  creds: { username: string; password: string },
  cnonce = randomBytes(8).toString('hex'),
): string {
  const params: Record<string, string> = {};
  for (const m of challenge.replace(/^digest\s+/i, '').matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) {
    params[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  }
  const algorithm = (params.algorithm ?? 'MD5').toUpperCase();
  const hashName = algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
  const h = (s: string) => createHash(hashName).update(s).digest('hex');
  const realm = params.realm ?? '';
  const nonce = params.nonce ?? '';
  let ha1 = h(`${creds.username}:${realm}:${creds.password}`);
  if (algorithm.endsWith('-SESS')) ha1 = h(`${ha1}:${nonce}:${cnonce}`);
  const ha2 = h(`${method}:${uri}`);
  const qop = (params.qop ?? '').split(',').map((q) => q.trim()).includes('auth') ? 'auth' : '';
  const nc = '00000001';
  const response = qop ? h(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : h(`${ha1}:${nonce}:${ha2}`);
  const parts = [
    `username="${creds.username}"`,
    `realm="${realm}"`,
    `nonce="${nonce}"`,
    `uri="${uri}"`,
    `algorithm=${params.algorithm ?? 'MD5'}`,
    `response="${response}"`,
  ];
  if (qop) parts.push(`qop=${qop}`, `nc=${nc}`, `cnonce="${cnonce}"`);
  if (params.opaque !== undefined) parts.push(`opaque="${params.opaque}"`);
  return `Digest ${parts.join(', ')}`;
}

/** Maps an HTTP failure to the provider result kinds: everything here is transient except a refused host. */
export function classifyHttpError(e: unknown): { kind: 'transient'; reason: string } | { kind: 'permanent'; reason: string; providerFault: boolean } {
  if (e instanceof HttpError) {
    if (e.failure === 'host' || e.failure === 'protocol' || e.failure === 'tls') return { kind: 'permanent', reason: e.message, providerFault: true };
    return { kind: 'transient', reason: e.message };
  }
  return { kind: 'transient', reason: (e as Error)?.message ?? String(e) };
}

/** Certificate problems are configuration errors, not outages. */
function isTlsVerificationError(e: NodeJS.ErrnoException): boolean {
  const code = e.code ?? '';
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME_INVALID/.test(code);
}
