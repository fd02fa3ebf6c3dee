import { readFileSync, realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { Type, type Static } from 'typebox';
import { BoolLike, ConfigValidationError, defineProvider, NumberLike } from '../config.ts';
import { smtpProbe, smtpSend, smtpSettingsFrom } from '../net/smtp.ts';
import type { OutgoingMessage, Provider, ProviderContext } from '../types.ts';

/** SMTPEmailProvider config (spec 6.8). */
export const smtpEmailSchema = Type.Object(
  {
    SMTP_SERVER: Type.String({ minLength: 1 }),
    SMTP_PORT: Type.Optional(NumberLike('default 25, 587 with START_TLS, 465 with USE_SSL')),
    START_TLS: Type.Optional(BoolLike()),
    USE_SSL: Type.Optional(BoolLike()),
    KEYFILE: Type.Optional(Type.String()),
    CERTFILE: Type.Optional(Type.String()),
    SMTP_USER: Type.Optional(Type.String()),
    SMTP_PASSWORD: Type.Optional(Type.String({ secret: true })),
    EMAIL_FROM: Type.Optional(Type.String({ default: 'linotp@example.com' })),
    EMAIL_SUBJECT: Type.Optional(Type.String({ default: 'Your OTP' })),
    TEMPLATE: Type.Optional(Type.String({ description: 'full MIME template inline, or file://<name> under email_provider_template_root' })),
    TIMEOUT: Type.Optional(Type.Union([NumberLike(), Type.String()])),
    timeout: Type.Optional(Type.Union([NumberLike(), Type.String()])),
    SERVER_CERTIFICATE: Type.Optional(Type.Union([Type.String(), Type.Boolean()], { description: 'otpd: CA file for the server, or false' })),
  },
  { additionalProperties: false },
);

export type SmtpEmailConfig = Static<typeof smtpEmailSchema>;

/** Replaces `${name}` with values; unknown names stay as they are (LinOTP's rule). */
export function substituteVars(text: string, vars: Record<string, string | undefined>, stripNewlines = false): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
    const v = vars[name];
    if (v === undefined) return whole;
    return stripNewlines ? v.replace(/[\r\n]+/g, ' ') : v;
  });
}

/** Plain-mode rendering: `<otp>`, `<serial>`, then `${field}` from the user's info. */
export function renderPlain(msg: OutgoingMessage, defaultSubject: string): { subject: string; body: string } {
  let body = msg.text;
  let subject = msg.subject || defaultSubject;
  if (msg.otp !== undefined && !body.includes('<otp>') && !body.includes('${otp}') && !body.includes(msg.otp)) body = `${body} <otp>`;
  const tags = (s: string) => {
    let out = s;
    if (msg.otp !== undefined) out = out.replaceAll('<otp>', msg.otp);
    if (msg.serial !== undefined) out = out.replaceAll('<serial>', msg.serial);
    return out;
  };
  body = tags(body);
  subject = tags(subject);
  const vars = { ...userVars(msg), Subject: subject };
  return { subject: substituteVars(subject, vars, true), body: substituteVars(body, vars) };
}

function userVars(msg: OutgoingMessage): Record<string, string | undefined> {
  return { ...(msg.userInfo ?? {}), ...(msg.otp !== undefined ? { otp: msg.otp } : {}), ...(msg.serial !== undefined ? { serial: msg.serial } : {}) };
}

/** Reads `file://<name>` below the template root; names never leave it. */
export function loadTemplate(template: string, root: string): string {
  if (!template.startsWith('file://')) return template;
  const name = template.slice('file://'.length);
  const base = resolve(root);
  const target = resolve(base, name);
  if (!target.startsWith(base + sep)) throw new ConfigValidationError([`config.TEMPLATE: ${name} is outside the template root`]);
  let real: string;
  try {
    real = realpathSync(target);
  } catch {
    throw new ConfigValidationError([`config.TEMPLATE: cannot read ${target}`]);
  }
  if (!real.startsWith(realpathSync(base) + sep)) throw new ConfigValidationError([`config.TEMPLATE: ${name} is outside the template root`]);
  return readFileSync(real, 'utf8');
}

function create(config: SmtpEmailConfig, ctx: ProviderContext): Provider {
  const settings = smtpSettingsFrom(
    {
      server: config.SMTP_SERVER, port: config.SMTP_PORT, ssl: config.USE_SSL, startTls: config.START_TLS, user: config.SMTP_USER,
      password: config.SMTP_PASSWORD, certFile: config.CERTFILE, keyFile: config.KEYFILE, serverCertificate: config.SERVER_CERTIFICATE,
    },
    { server: 'SMTP_SERVER', certFile: 'CERTFILE', keyFile: 'KEYFILE' },
    ctx,
  );
  const from = config.EMAIL_FROM || 'linotp@example.com';
  const defaultSubject = config.EMAIL_SUBJECT || 'Your OTP';
  const template = config.TEMPLATE ? loadTemplate(config.TEMPLATE, ctx.templateRoot) : undefined;

  return {
    send(message, signal) {
      if (/[\r\n]/.test(message.to)) return Promise.resolve({ kind: 'permanent', reason: 'invalid e-mail address' });
      if (template) {
        // Template mode: the provider's subject wins; headers get values without line breaks.
        const date = new Date().toUTCString();
        const vars = { ...userVars(message), Subject: defaultSubject, From: from, To: message.to, Date: date };
        const raw = substituteVars(template, vars, true).replace(/\r?\n/g, '\r\n');
        return smtpSend(settings, ctx, { envelope: { from, to: [message.to] }, raw }, signal);
      }
      const { subject, body } = renderPlain(message, defaultSubject);
      return smtpSend(settings, ctx, { from, to: message.to, subject, text: body, date: new Date() }, signal);
    },
    probe: (signal) => smtpProbe(settings, ctx, signal),
  };
}

export const smtpEmailProvider = defineProvider({
  className: 'SMTPEmailProvider',
  aliases: ['linotp.provider.emailprovider.SMTPEmailProvider', 'linotp.lib.emailprovider.SMTPEmailProvider', 'emailprovider.SMTPEmailProvider'],
  type: 'email',
  displayName: 'E-mail (SMTP)',
  schema: smtpEmailSchema,
  create,
});
