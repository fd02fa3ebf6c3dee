import { Type } from 'typebox';
import { ConfigValidationError, defineProvider } from '../config.ts';
import type { CaptureSink, ProviderContext } from '../types.ts';
import { messageText } from './common.ts';

/**
 * The demo's SMS "gateway" (docs/demo.md): keeps each message in otpd's database, listed at
 * `/demo/messages`, instead of sending it. Exists only in demo mode: the composition root
 * gives the capture sink then and only then, so outside the demo this class cannot be built
 * (setProvider refuses it, a leftover row is unusable).
 */
export const captureSchema = Type.Object(
  {
    timeout: Type.Optional(Type.Union([Type.String(), Type.Number()], { description: 'accepted for the provider form; nothing is sent' })),
  },
  { additionalProperties: false },
);

/** The sink, or the refusal that names demo mode. */
export function captureSinkOf(ctx: ProviderContext, className: string): CaptureSink {
  if (!ctx.capture) throw new ConfigValidationError([`config: ${className} keeps messages for /demo/messages and exists only in demo mode (docs/demo.md)`]);
  return ctx.capture;
}

export const captureSmsProvider = defineProvider({
  className: 'otpd.demo.CaptureSMS',
  aliases: ['CaptureSMSProvider'],
  type: 'sms',
  displayName: 'Demo: keep SMS in otpd (/demo/messages)',
  demoOnly: true,
  schema: captureSchema,
  create(_config, ctx) {
    const capture = captureSinkOf(ctx, 'otpd.demo.CaptureSMS');
    return {
      async send(message) {
        await capture({ channel: 'sms', to: message.to, text: messageText(message) });
        return { kind: 'accepted' };
      },
    };
  },
});
