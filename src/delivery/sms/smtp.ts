import { Type, type Static } from 'typebox';
import { BoolLike, defineProvider, NumberLike } from '../config.ts';
import { smtpProbe, smtpSend, smtpSettingsFrom } from '../net/smtp.ts';
import type { Provider, ProviderContext } from '../types.ts';
import { commonSmsKeys, messageText, onlyTrue, preparePhone } from './common.ts';

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
    mailpassword: Type.Optional(Type.String({ secret: true })),
    mailsender: Type.Optional(Type.String({ default: 'linotp@localhost' })),
    mailto: Type.String({ minLength: 1, description: 'recipient, <phone> is replaced, e.g. <phone>@sms.example.com' }),
    subject: Type.Optional(Type.String({ default: '[LinOTP]' })),
    body: Type.Optional(Type.String({ default: '<otp>' })),
    raise_exception: Type.Optional(BoolLike('LinOTP\'s key; only true (every failed send counts as a failure)')),
    SERVER_CERTIFICATE: Type.Optional(Type.Union([Type.String(), Type.Boolean()], { description: 'otpd: CA file for the server, or false' })),
    ...commonSmsKeys,
  },
  { additionalProperties: false },
);

export type SmtpSmsConfig = Static<typeof smtpSmsSchema>;

function create(config: SmtpSmsConfig, ctx: ProviderContext): Provider {
  onlyTrue('raise_exception', config.raise_exception, 'otpd treats every failed send as a failure: recorded in the delivery log, a transient one retried and failed over');
  const settings = smtpSettingsFrom(
    {
      server: config.mailserver, port: config.mailserver_port, ssl: config.use_ssl, startTls: config.start_tls, user: config.mailuser,
      password: config.mailpassword, certFile: config.certfile, keyFile: config.keyfile, serverCertificate: config.SERVER_CERTIFICATE,
    },
    { server: 'mailserver', certFile: 'certfile', keyFile: 'keyfile' },
    ctx,
  );
  const sender = config.mailsender || 'linotp@localhost';
  const to = config.mailto;
  const subject = config.subject ?? '[LinOTP]';
  const body = config.body ?? '<otp>';

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

export const smtpSmsProvider = defineProvider({
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
  create,
});
