import { defineProvider } from '../config.ts';
import { captureSchema, captureSinkOf } from '../sms/capture.ts';
import { renderPlain } from './smtp.ts';

/** The demo's mail server (docs/demo.md): keeps each e-mail (subject and body) for `/demo/messages`; see sms/capture.ts. */
export const captureEmailProvider = defineProvider({
  className: 'otpd.demo.CaptureEmail',
  aliases: ['CaptureEmailProvider'],
  type: 'email',
  displayName: 'Demo: keep e-mail in otpd (/demo/messages)',
  demoOnly: true,
  schema: captureSchema,
  create(_config, ctx) {
    const capture = captureSinkOf(ctx, 'otpd.demo.CaptureEmail');
    return {
      async send(message) {
        const { subject, body } = renderPlain(message, 'Your OTP');
        await capture({ channel: 'email', to: message.to, text: body, subject });
        return { kind: 'accepted' };
      },
    };
  },
});
