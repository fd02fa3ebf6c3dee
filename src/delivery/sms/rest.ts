import { Type, type Static } from 'typebox';
import { asStringMap, ConfigValidationError, defineProvider, NumberLike, StringMap } from '../config.ts';
import { classifyHttpError, httpRequest } from '../net/http-client.ts';
import type { Provider, ProviderContext, SendResult } from '../types.ts';
import { authScheme, checkProxy, commonSmsKeys, oneCredential, gatewayUrl, messageText, preparePhone, proxySchema, readConfigFile, serverCertificate } from './common.ts';
import { isTransientStatus, tcpProbe } from './http.ts';

/** RestSMSProvider config (spec 6.4). */
export const restSmsSchema = Type.Object(
  {
    URL: Type.String({ minLength: 1, description: 'endpoint; a comma list is accepted, the first entry is used' }),
    PAYLOAD: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.String()], { description: 'JSON body template' }),
    SMS_TEXT_KEY: Type.String({ minLength: 1, description: 'path in PAYLOAD (a.b[0].c) that receives the text' }),
    SMS_PHONENUMBER_KEY: Type.String({ minLength: 1, description: 'path in PAYLOAD that receives the number' }),
    USERNAME: Type.Optional(Type.String()),
    PASSWORD: Type.Optional(Type.String({ secret: true })),
    AUTHENTICATION: Type.Optional(Type.Union([Type.Literal('BASIC'), Type.Literal('DIGEST'), Type.Literal('basic'), Type.Literal('digest')])),
    HEADERS: Type.Optional(StringMap()),
    PROXY: Type.Optional(proxySchema),
    CLIENT_CERTIFICATE_FILE: Type.Optional(Type.String()),
    SERVER_CERTIFICATE: Type.Optional(Type.Union([Type.String(), Type.Boolean()])),
    ...commonSmsKeys,
    TIMEOUT: Type.Optional(Type.Union([NumberLike(), Type.String(), Type.Array(Type.Number(), { minItems: 1, maxItems: 2 })])),
  },
  { additionalProperties: false },
);

export type RestSmsConfig = Static<typeof restSmsSchema>;

type PathPart = string | number;

/** What a PAYLOAD given as a JSON string must parse to (arrays pass, as they always did). */
const isJsonObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** Parses `a.b[0].c` into ['a', 'b', 0, 'c']. */
export function parsePath(path: string): PathPart[] {
  const parts: PathPart[] = [];
  for (const segment of path.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(segment);
    if (!m) throw new ConfigValidationError([`bad path ${JSON.stringify(path)}`]);
    if (m[1]) parts.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) parts.push(Number(idx[1]));
  }
  if (parts.length === 0) throw new ConfigValidationError([`bad path ${JSON.stringify(path)}`]);
  return parts;
}

function getAt(obj: unknown, path: PathPart[]): unknown {
  let node = obj as any;
  for (const p of path) node = node?.[p];
  return node;
}

function setAt(obj: Record<string, unknown>, path: PathPart[], value: unknown): void {
  let node: any = obj;
  path.forEach((p, i) => {
    if (i === path.length - 1) {
      node[p] = value;
      return;
    }
    if (node[p] === undefined || node[p] === null || typeof node[p] !== 'object') node[p] = typeof path[i + 1] === 'number' ? [] : {};
    node = node[p];
  });
}

/** Fills the payload template with the text and the number (LinOTP's `<message>` / `<phone>` rules). */
export function buildPayload(template: Record<string, unknown>, textPath: PathPart[], phonePath: PathPart[], text: string, phone: string): Record<string, unknown> {
  const payload = structuredClone(template);
  const textTemplate = getAt(payload, textPath);
  setAt(payload, textPath, typeof textTemplate === 'string' && textTemplate.includes('<message>') ? textTemplate.replaceAll('<message>', text) : text);
  const phoneTemplate = getAt(payload, phonePath);
  let phoneValue: unknown = phone;
  if (typeof phoneTemplate === 'string' && phoneTemplate.includes('<phone>')) phoneValue = phoneTemplate.replaceAll('<phone>', phone);
  else if (Array.isArray(phoneTemplate) && phoneTemplate.length > 0) {
    phoneValue = phoneTemplate.map((t) => (typeof t === 'string' && t.includes('<phone>') ? t.replaceAll('<phone>', phone) : phone));
  }
  setAt(payload, phonePath, phoneValue);
  return payload;
}

function create(config: RestSmsConfig, ctx: ProviderContext): Provider {
  const url = config.URL.split(',')[0]!.trim();
  const parsedUrl = gatewayUrl(url, ctx);
  checkProxy(config.PROXY, ctx);
  let template: Record<string, unknown>;
  if (typeof config.PAYLOAD === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(config.PAYLOAD);
    } catch (e) {
      throw new ConfigValidationError([`config.PAYLOAD: invalid JSON: ${(e as Error).message}`]);
    }
    if (!isJsonObject(parsed)) throw new ConfigValidationError(['config.PAYLOAD: must be a JSON object']);
    template = parsed;
  } else template = config.PAYLOAD;
  let textPath: PathPart[];
  let phonePath: PathPart[];
  try {
    textPath = parsePath(config.SMS_TEXT_KEY);
    phonePath = parsePath(config.SMS_PHONENUMBER_KEY);
  } catch (e) {
    throw new ConfigValidationError([`config.SMS_TEXT_KEY/SMS_PHONENUMBER_KEY: ${(e as Error).message}`]);
  }
  const headers = { accept: 'application/json', 'content-type': 'application/json', ...lower(asStringMap(config.HEADERS)) };
  oneCredential(headers, config.USERNAME, parsedUrl);
  const tlsOpts = serverCertificate(config.SERVER_CERTIFICATE);
  let clientCert: { cert: Buffer; key?: Buffer } | undefined;
  if (config.CLIENT_CERTIFICATE_FILE) {
    // One PEM file with certificate and key, as LinOTP (requests' `cert=`) expects.
    const pem = readConfigFile(config.CLIENT_CERTIFICATE_FILE, 'CLIENT_CERTIFICATE_FILE');
    clientCert = { cert: pem, ...(pem.includes('PRIVATE KEY') ? { key: pem } : {}) };
  }
  const auth = config.USERNAME ? { username: config.USERNAME, password: config.PASSWORD ?? '', type: authScheme(config.AUTHENTICATION) } : undefined;
  const proxy = typeof config.PROXY === 'string' ? config.PROXY : config.PROXY?.[parsedUrl.protocol === 'https:' ? 'https' : 'http'];

  return {
    async send(message, signal): Promise<SendResult> {
      const payload = buildPayload(template, textPath, phonePath, messageText(message), preparePhone(message.to, config));
      let res;
      try {
        res = await httpRequest({
          url,
          method: 'POST',
          json: payload,
          headers,
          auth,
          proxy,
          ca: tlsOpts.ca,
          rejectUnauthorized: tlsOpts.rejectUnauthorized,
          clientCert,
          connectTimeoutMs: ctx.connectTimeoutMs,
          timeoutMs: ctx.timeoutMs,
          signal,
          hosts: ctx.hosts,
        });
      } catch (e) {
        return classifyHttpError(e);
      }
      if (isTransientStatus(res.status)) return { kind: 'transient', reason: `gateway answered HTTP ${res.status}` };
      if (res.status >= 300) {
        const redirect = res.status < 400 ? ' (redirects are not followed)' : '';
        return { kind: 'permanent', reason: `gateway answered HTTP ${res.status}${redirect}`, providerFault: res.status !== 400 && res.status !== 422 };
      }
      return { kind: 'accepted', ...messageIdFrom(res.body) };
    },
    probe: (signal) => tcpProbe(parsedUrl, ctx, signal),
  };
}

function lower(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

/** Picks a message id from a JSON answer, when the gateway gives one. */
function messageIdFrom(body: string): { providerMessageId?: string } {
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    for (const k of ['message_id', 'messageId', 'id', 'sid']) {
      const v = parsed?.[k];
      if (typeof v === 'string' || typeof v === 'number') return { providerMessageId: String(v).slice(0, 128) };
    }
  } catch {
    // not JSON: no id
  }
  return {};
}

export const restSmsProvider = defineProvider({
  className: 'RestSMSProvider',
  aliases: [
    'linotp.provider.smsprovider.RestSMSProvider',
    'smsprovider.RestSMSProvider.RestSMSProvider',
    'smsprovider.RestSMSProvider',
    'linotp.provider.smsprovider.RestSMSProvider.RestSMSProvider',
  ],
  type: 'sms',
  displayName: 'REST (JSON) SMS gateway',
  schema: restSmsSchema,
  create,
});
