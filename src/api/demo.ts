import { defineRoutes, raw, type Api } from './route.ts';

/**
 * Demo mode's JSON face (docs/demo.md): `/demo/messages.json`, the messages the capture
 * providers kept instead of sending them, newest first: `[{channel, to, text, time}]` (e-mail
 * also `subject`). The codes are in the text on purpose; otpd listens on loopback only in demo
 * mode. Outside demo mode the route does not exist (404).
 */
export function register(api: Api): void {
  if (!api.services.demo) return;
  defineRoutes(api, [
    {
      path: '/demo/messages.json',
      methods: ['GET'],
      audit: false,
      handler: async (ctx) => raw(await ctx.services.demo!.messages.list()),
    },
  ]);
}
