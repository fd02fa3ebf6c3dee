import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { asBool, asNumber, ConfigValidationError } from '../config.ts';
import { readConfigFile, serverCertificate } from '../sms/common.ts';
import type { ProbeResult, ProviderContext, SendResult } from '../types.ts';
import { checkedSocket } from '../../util/net.ts';
import { plainError } from '../../util/plain-errors.ts';

/** Connection settings shared by SmtpSMSProvider and SMTPEmailProvider. */
export interface SmtpSettings {
  host: string;
  port: number;
  /** Implicit TLS (port 465). */
  useSsl: boolean;
  /** Require STARTTLS; without it nodemailer still upgrades when the server offers it. */
  startTls: boolean;
  user?: string;
  password?: string;
  ca?: Buffer;
  rejectUnauthorized: boolean;
  clientKey?: Buffer;
  clientCert?: Buffer;
}

/** `host` or `host:port` (LinOTP's `mailserver`) with the default port by TLS mode. */
export function splitHostPort(value: string, explicitPort: number | undefined, useSsl: boolean, startTls: boolean): { host: string; port: number } {
  let host = value.trim();
  let port = explicitPort;
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(host);
  if (m) {
    host = m[1]!;
    port ??= Number(m[2]);
  }
  port ??= useSsl ? 465 : startTls ? 587 : 25;
  return { host: host.replace(/^\[|\]$/g, ''), port };
}

export function checkSmtpHost(settings: SmtpSettings, ctx: ProviderContext, key: string): void {
  const why = ctx.hosts.refuse(settings.host);
  if (why) throw new ConfigValidationError([`config.${key}: ${why}`]);
  if (!Number.isInteger(settings.port) || settings.port < 1 || settings.port > 65535) throw new ConfigValidationError([`config.${key}: bad port ${settings.port}`]);
}

function transport(settings: SmtpSettings, ctx: ProviderContext) {
  const options: SMTPTransport.Options = {
    host: settings.host,
    port: settings.port,
    secure: settings.useSsl,
    requireTLS: settings.startTls && !settings.useSsl,
    // the socket asks the host policy when nodemailer connects (the name and every resolved address)
    socket: checkedSocket(ctx.hosts),
    connectionTimeout: ctx.connectTimeoutMs,
    greetingTimeout: ctx.connectTimeoutMs,
    socketTimeout: ctx.timeoutMs,
    dnsTimeout: ctx.connectTimeoutMs,
    tls: {
      rejectUnauthorized: settings.rejectUnauthorized,
      ...(settings.ca ? { ca: settings.ca } : {}),
      ...(settings.clientCert ? { cert: settings.clientCert, key: settings.clientKey } : {}),
    },
    ...(settings.user ? { auth: { user: settings.user, pass: settings.password ?? '' } } : {}),
    logger: false,
    debug: false,
  };
  return nodemailer.createTransport(options);
}

/**
 * Maps nodemailer errors: connection trouble, timeouts and 4xx replies are
 * transient; a 5xx on the recipient is a refusal of that address; refused
 * authentication and TLS failures say the provider's config is wrong. With the
 * settings, the reason names the server and, for the usual TLS mix-ups (USE_SSL on a
 * plain or STARTTLS port, START_TLS against a plain relay, plain against port 465),
 * which setting fits.
 */
export function classifySmtpError(e: unknown, settings?: Pick<SmtpSettings, 'host' | 'port' | 'useSsl' | 'startTls'>): SendResult {
  const err = e as { code?: string; responseCode?: number; message?: string; command?: string };
  const code = err.code ?? '';
  const response = err.responseCode;
  const text = (err.message ?? String(e)).replace(/\s+/g, ' ').slice(0, 200);
  const server = settings ? ` ${settings.host}:${settings.port}` : '';
  if (code === 'ENOTALLOWED' || /is not allowed for providers/.test(text)) return { kind: 'permanent', reason: `SMTP host refused: ${text}`, providerFault: true };
  if (code === 'EAUTH' || code === 'ENOAUTH') return { kind: 'permanent', reason: `SMTP authentication failed (${response ?? code})`, providerFault: true };
  if (err.command === 'STARTTLS' || (code === 'ETLS' && /STARTTLS/i.test(text))) {
    return { kind: 'permanent', reason: `SMTP server${server} does not offer STARTTLS (${response ?? code}): for a plain relay set START_TLS off; for implicit TLS (port 465) set USE_SSL`, providerFault: true };
  }
  if (/wrong version number/i.test(text)) {
    return { kind: 'permanent', reason: `SMTP TLS failed: the server${server} does not speak TLS on connect (wrong version number): USE_SSL is for port 465; for port 587 use START_TLS, for a plain relay neither`, providerFault: true };
  }
  if (code === 'ETIMEDOUT' && /greeting never received/i.test(text) && settings && !settings.useSsl && settings.port === 465) {
    return { kind: 'permanent', reason: `SMTP server${server} sent no greeting: port 465 expects TLS on connect (set USE_SSL)`, providerFault: true };
  }
  if (code === 'ETLS' || (code !== 'EENVELOPE' && /certificate|self[- ]signed|SSL|TLS/i.test(text))) {
    return { kind: 'permanent', reason: `SMTP TLS failed${server ? ` with${server}` : ''}: ${plainError(e)}`, providerFault: true };
  }
  if (typeof response === 'number') {
    if (response >= 400 && response < 500) return { kind: 'transient', reason: `SMTP server answered ${response}` };
    if (response >= 500) {
      const recipient = code === 'EENVELOPE' || /RCPT/i.test(err.command ?? '');
      return { kind: 'permanent', reason: `SMTP server refused ${recipient ? 'the recipient' : 'the message'} (${response})`, providerFault: !recipient };
    }
  }
  // nodemailer's greeting and inactivity timeouts ("Greeting never received", "Timeout"): a server that accepts and hangs
  if (code === 'ETIMEDOUT' && /^(greeting never received|timeout)$/i.test(text.trim())) {
    return { kind: 'transient', reason: `SMTP server${server} did not answer in time (${text.trim().toLowerCase()})` };
  }
  if (['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET', 'EPROTOCOL'].includes(code) || /timeout|ECONNREFUSED/i.test(text)) {
    return { kind: 'transient', reason: `SMTP connection${server ? ` to${server}` : ''} failed: ${plainError(e)}` };
  }
  return { kind: 'transient', reason: `SMTP error: ${text}` };
}

/** Sends one mail; a fresh connection per send, cut off by the signal. */
export async function smtpSend(settings: SmtpSettings, ctx: ProviderContext, mail: Mail.Options, signal: AbortSignal): Promise<SendResult> {
  const tx = transport(settings, ctx);
  let onAbort: (() => void) | undefined;
  try {
    const aborted = new Promise<SendResult>((resolve) => {
      onAbort = () => resolve({ kind: 'transient', reason: 'SMTP send aborted (timeout)' });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    const sent = tx.sendMail(mail).then(
      (info): SendResult => {
        if (info.rejected && info.rejected.length > 0) return { kind: 'permanent', reason: 'SMTP server refused the recipient' };
        return { kind: 'accepted', ...(info.messageId ? { providerMessageId: String(info.messageId).slice(0, 128) } : {}) };
      },
      (e: unknown) => classifySmtpError(e, settings),
    );
    return await Promise.race([sent, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    tx.close();
  }
}

export async function smtpProbe(settings: SmtpSettings, ctx: ProviderContext, signal: AbortSignal): Promise<ProbeResult> {
  const tx = transport(settings, ctx);
  try {
    const verified = tx.verify().then(
      (): ProbeResult => ({ ok: true }),
      (e: unknown): ProbeResult => {
        const r = classifySmtpError(e, settings);
        return { ok: false, reason: r.kind === 'accepted' ? 'error' : r.reason };
      },
    );
    const aborted = new Promise<ProbeResult>((resolve) => signal.addEventListener('abort', () => resolve({ ok: false, reason: 'aborted' }), { once: true }));
    return await Promise.race([verified, aborted]);
  } finally {
    tx.close();
  }
}

/** The SMTP connection fields of a provider config (LinOTP names them differently per class). */
export interface SmtpConfigFields {
  server: string;
  port?: number | string;
  ssl?: boolean | string;
  startTls?: boolean | string;
  user?: string;
  password?: string;
  certFile?: string;
  keyFile?: string;
  serverCertificate?: string | boolean;
}

/** The class's config key of each field that can be refused, for the error message. */
export interface SmtpKeyNames {
  server: string;
  certFile: string;
  keyFile: string;
}

/**
 * The SMTP connection of a provider config: host and port (with the SSL/STARTTLS
 * default ports), TLS trust, client certificate, credentials; the host is checked
 * against the provider host policy.
 */
export function smtpSettingsFrom(fields: SmtpConfigFields, keys: SmtpKeyNames, ctx: ProviderContext): SmtpSettings {
  const useSsl = asBool(fields.ssl);
  const startTls = asBool(fields.startTls);
  const explicitPort = fields.port === undefined || fields.port === '' ? undefined : asNumber(fields.port, 25);
  const { host, port } = splitHostPort(fields.server, explicitPort, useSsl, startTls);
  const tlsOpts = serverCertificate(fields.serverCertificate);
  const settings: SmtpSettings = {
    host,
    port,
    useSsl,
    startTls,
    user: fields.user || undefined,
    password: fields.password,
    ca: tlsOpts.ca,
    rejectUnauthorized: tlsOpts.rejectUnauthorized,
    ...(fields.certFile ? { clientCert: readConfigFile(fields.certFile, keys.certFile) } : {}),
    ...(fields.keyFile ? { clientKey: readConfigFile(fields.keyFile, keys.keyFile) } : {}),
  };
  checkSmtpHost(settings, ctx, keys.server);
  return settings;
}
