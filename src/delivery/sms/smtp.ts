import { Type } from 'typebox';
import { BoolLike, NumberLike } from '../config.ts';
import { smtpProbe, smtpSend, smtpSettingsFrom } from '../net/smtp.ts';
import type { Provider, ProviderContext, ProviderModule } from '../types.ts';
import { commonSmsKeys, messageText, preparePhone } from './common.ts';

/** SmtpSMSProvider config (spec 6.5): SMS through an e-mail-to-SMS gateway. */
export const smtpSmsSchema = Type.Object(
  {
    mailserver: Type.String({ minLength: 1, description: 'host or host:port' }),
    mailserver_port: Type.Optional(NumberLike('default 25, 587 with start_tls, 465 with use_ssl')),
    start_tls: Type.Optional(BoolLike()),
    use_ssl: Type.Optional(BoolLike()),
    keyfile: Type.Optional(Type.String()),
    certfile: Type.Optional(Type.String()),
    mailuser: Type.Optional(Type.String()),
    mailpassword: Type.Optional(Type.String()),
    mailsender: Type.Optional(Type.String({ default: 'linotp@localhost' })),
    mailto: Type.String({ minLength: 1, description: 'recipient, <phone> is replaced, e.g. <phone>@sms.example.com' }),
    subject: Type.Optional(Type.String({ default: '[LinOTP]' })),
    body: Type.Optional(Type.String({ default: '<otp>' })),
    raise_exception: Type.Optional(BoolLike()),
    SERVER_CERTIFICATE: Type.Optional(Type.Union([Type.String(), Type.Boolean()], { description: 'otpd: CA file for the server, or false' })),
    ...commonSmsKeys,
  },
  { additionalProperties: false },
);

function create(config: Record<string, unknown>, ctx: ProviderContext): Provider {
  const settings = smtpSettingsFrom(config, {
    server: 'mailserver', port: 'mailserver_port', ssl: 'use_ssl', startTls: 'start_tls', user: 'mailuser', password: 'mailpassword', certFile: 'certfile', keyFile: 'keyfile',
  }, ctx);
  const sender = String(config.mailsender || 'linotp@localhost');
  const to = String(config.mailto);
  const subject = String(config.subject ?? '[LinOTP]');
  const body = String(config.body ?? '<otp>');

  return {
    send(message, signal) {
      const phone = preparePhone(message.to, config);
      const text = messageText(message);
      const fill = (s: string) => s.replaceAll('<phone>', phone).replaceAll('<otp>', text);
      return smtpSend(settings, ctx, { from: sender, to: to.replaceAll('<phone>', phone), subject: fill(subject), text: fill(body) }, signal);
    },
    probe: (signal) => smtpProbe(settings, ctx, signal),
  };
}

export const smtpSmsProvider: ProviderModule = {
  className: 'SmtpSMSProvider',
  aliases: [
    'linotp.provider.smsprovider.SmtpSMSProvider',
    'smsprovider.SmtpSMSProvider.SmtpSMSProvider',
    'smsprovider.SmtpSMSProvider',
    'linotp.provider.smsprovider.SmtpSMSProvider.SmtpSMSProvider',
  ],
  type: 'sms',
  displayName: 'SMS through an e-mail gateway (SMTP)',
  schema: smtpSmsSchema,
  secretKeys: ['mailpassword'],
  create,
};
