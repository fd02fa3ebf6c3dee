import { connectChecked } from '../../util/net.ts';
import { Type, type Static } from 'typebox';
import { asStringMap, BoolLike, defineProvider, StringMap } from '../config.ts';
import { classifyHttpError, httpRequest, type HttpResponse } from '../net/http-client.ts';
import type { Provider, ProviderContext, ProbeResult, SendResult } from '../types.ts';
import { authScheme, checkProxy, oneCredential, onlyTrue, commonSmsKeys, compileRegex, gatewayUrl, messageText, preparePhone, proxySchema, serverCertificate } from './common.ts';

/** HttpSMSProvider config (spec 6.3): LinOTP's keys, unchanged. */
export const httpSmsSchema = Type.Object(
  {
    URL: Type.String({ minLength: 1, description: 'gateway URL (http/https); user:pw@ in it is used when USERNAME is absent' }),
    HTTP_Method: Type.Optional(Type.Union([Type.Literal('GET'), Type.Literal('POST'), Type.Literal('get'), Type.Literal('post')], { description: 'GET = query parameters, POST = form body', default: 'POST' })),
    SMS_PHONENUMBER_KEY: Type.Optional(Type.String({ minLength: 1, default: 'phone' })),
    SMS_TEXT_KEY: Type.Optional(Type.String({ minLength: 1, default: 'sms' })),
    PARAMETER: Type.Optional(StringMap('extra static parameters, merged last')),
    USERNAME: Type.Optional(Type.String()),
    PASSWORD: Type.Optional(Type.String({ secret: true })),
    AUTH_TYPE: Type.Optional(Type.Union([Type.Literal('basic'), Type.Literal('digest'), Type.Literal('BASIC'), Type.Literal('DIGEST')], { default: 'basic' })),
    PROXY: Type.Optional(proxySchema),
    HEADERS: Type.Optional(StringMap('extra request headers')),
    SERVER_CERTIFICATE: Type.Optional(Type.Union([Type.String(), Type.Boolean()], { description: 'CA file, or false to skip verification' })),
    RETURN_SUCCESS: Type.Optional(Type.String({ description: 'success iff the body starts with this' })),
    RETURN_SUCCESS_REGEX: Type.Optional(Type.String()),
    RETURN_FAIL: Type.Optional(Type.String({ description: 'failure iff the body starts with this' })),
    RETURN_FAIL_REGEX: Type.Optional(Type.String()),
    CHECK_SSL: Type.Optional(BoolLike('LinOTP\'s key; only true (otpd always verifies certificates unless SERVER_CERTIFICATE is false)')),
    ...commonSmsKeys,
  },
  { additionalProperties: false },
);

export type HttpSmsConfig = Static<typeof httpSmsSchema>;

/**
 * Evaluates the gateway's answer body with LinOTP's rule: the first present
 * key of RETURN_SUCCESS_REGEX, RETURN_FAIL_REGEX, RETURN_SUCCESS, RETURN_FAIL
 * decides; none configured = success.
 */
export function evaluateReturn(
  body: string,
  rules: { successRegex?: RegExp; failRegex?: RegExp; success?: string; fail?: string },
): { ok: true } | { ok: false; reason: string } {
  if (rules.successRegex) return rules.successRegex.test(body) ? { ok: true } : { ok: false, reason: 'answer does not match RETURN_SUCCESS_REGEX' };
  if (rules.failRegex) return rules.failRegex.test(body) ? { ok: false, reason: 'answer matches RETURN_FAIL_REGEX' } : { ok: true };
  if (rules.success !== undefined) return body.startsWith(rules.success) ? { ok: true } : { ok: false, reason: 'answer does not start with RETURN_SUCCESS' };
  if (rules.fail !== undefined) return body.startsWith(rules.fail) ? { ok: false, reason: 'answer starts with RETURN_FAIL' } : { ok: true };
  return { ok: true };
}

/** Status codes that say "try again later" rather than "no". */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

function create(config: HttpSmsConfig, ctx: ProviderContext): Provider {
  onlyTrue('CHECK_SSL', config.CHECK_SSL, "otpd always verifies the gateway's certificate; to skip verification set SERVER_CERTIFICATE to false");
  const url = config.URL;
  const parsedUrl = gatewayUrl(url, ctx);
  checkProxy(config.PROXY, ctx);
  const method = config.HTTP_Method?.toUpperCase() === 'GET' ? 'GET' : 'POST';
  const phoneKey = config.SMS_PHONENUMBER_KEY ?? 'phone';
  const textKey = config.SMS_TEXT_KEY ?? 'sms';
  const extra = asStringMap(config.PARAMETER);
  const headers = asStringMap(config.HEADERS);
  oneCredential(headers, config.USERNAME, parsedUrl);
  const tlsOpts = serverCertificate(config.SERVER_CERTIFICATE);
  const rules = {
    successRegex: compileRegex(config.RETURN_SUCCESS_REGEX, 'RETURN_SUCCESS_REGEX'),
    failRegex: compileRegex(config.RETURN_FAIL_REGEX, 'RETURN_FAIL_REGEX'),
    success: config.RETURN_SUCCESS,
    fail: config.RETURN_FAIL,
  };
  const auth = config.USERNAME ? { username: config.USERNAME, password: config.PASSWORD ?? '', type: authScheme(config.AUTH_TYPE) } : undefined;
  const proxyFor = (scheme: string): string | undefined => {
    const p = config.PROXY;
    if (!p) return undefined;
    if (typeof p === 'string') return p;
    return scheme === 'https:' ? p.https ?? p.http : p.http;
  };

  const call = (params: Record<string, string>, signal: AbortSignal): Promise<HttpResponse> =>
    httpRequest({
      url,
      method,
      ...(method === 'GET' ? { query: params } : { form: params }),
      headers,
      auth,
      proxy: proxyFor(parsedUrl.protocol),
      ca: tlsOpts.ca,
      rejectUnauthorized: tlsOpts.rejectUnauthorized,
      connectTimeoutMs: ctx.connectTimeoutMs,
      timeoutMs: ctx.timeoutMs,
      signal,
      hosts: ctx.hosts,
    });

  return {
    async send(message, signal): Promise<SendResult> {
      const params: Record<string, string> = {
        [phoneKey]: preparePhone(message.to, config),
        [textKey]: messageText(message),
        ...extra,
      };
      let res: HttpResponse;
      try {
        res = await call(params, signal);
      } catch (e) {
        return classifyHttpError(e);
      }
      if (isTransientStatus(res.status)) return { kind: 'transient', reason: `gateway answered HTTP ${res.status}` };
      if (res.status >= 300 && res.status < 400) {
        return { kind: 'permanent', reason: `gateway answered HTTP ${res.status} (redirects are not followed)`, providerFault: true };
      }
      if (res.status >= 400) return { kind: 'permanent', reason: `gateway answered HTTP ${res.status}`, providerFault: true };
      const verdict = evaluateReturn(res.body, rules);
      if (!verdict.ok) return { kind: 'permanent', reason: verdict.reason, providerFault: true };
      const id = res.headers['x-message-id'];
      return { kind: 'accepted', ...(typeof id === 'string' && id ? { providerMessageId: id.slice(0, 128) } : {}) };
    },
    probe: (signal) => {
      const proxy = proxyFor(parsedUrl.protocol);
      return tcpProbe(proxy ? new URL(proxy) : parsedUrl, ctx, signal, proxy ? 8080 : undefined);
    },
  };
}

/** Health probe: a TCP connect to the gateway (or its proxy), checked against the host policy. */
export function tcpProbe(url: URL, ctx: ProviderContext, signal: AbortSignal, defaultPort?: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const port = Number(url.port || defaultPort || (url.protocol === 'https:' ? 443 : 80));
    // connectChecked: a literal host skips lookup, so the policy is asked before connecting too
    const socket = connectChecked(ctx.hosts, port, url.hostname);
    const finish = (r: ProbeResult) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(r);
    };
    const onAbort = () => finish({ ok: false, reason: 'aborted' });
    const timer = setTimeout(() => finish({ ok: false, reason: 'connect timeout' }), ctx.connectTimeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish({ ok: true }));
    socket.once('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: e.code === 'ENOTALLOWED' ? e.message : e.code ?? e.message }));
  });
}

export const httpSmsProvider = defineProvider({
  className: 'HttpSMSProvider',
  aliases: [
    'linotp.provider.smsprovider.HttpSMSProvider',
    'smsprovider.HttpSMSProvider.HttpSMSProvider',
    'smsprovider.HttpSMSProvider',
    'linotp.provider.smsprovider.HttpSMSProvider.HttpSMSProvider',
  ],
  type: 'sms',
  displayName: 'HTTP SMS gateway',
  schema: httpSmsSchema,
  create,
});
