import type { FastifyInstance } from 'fastify';
import { invokeRoute } from '../../api/route.ts';
import type { Services } from '../../services.ts';
import { renderPage } from '../page.ts';

/** One message as `/demo/messages.json` answers it. */
interface Message { channel: 'sms' | 'email'; to: string; text: string; time: string; subject?: string }

/**
 * `/demo/messages` (demo mode only, docs/demo.md): the captured SMS and e-mails as a page in the
 * management UI's look, over the JSON route `/demo/messages.json` (the page reads nothing the
 * route does not give). No login: the demo's users read their codes here.
 */
export async function registerDemoPages(app: FastifyInstance, services: Services): Promise<void> {
  if (!services.demo) return;
  app.get('/demo', (_request, reply) => reply.redirect('/demo/messages', 302));
  app.get('/demo/', (_request, reply) => reply.redirect('/demo/messages', 302));
  app.get('/demo/messages', async (request, reply) => {
    const result = await invokeRoute(app, services, '/demo/messages.json', { params: {}, request, reply });
    const messages = (result.kind === 'raw' ? result.body : []) as Message[];
    return renderPage(reply, 'demo/messages', {
      title: 'Captured messages', demo: true, sections: [], current: undefined, admin: undefined,
      messages: messages.map((m) => ({ ...m, shown: m.time.replace('T', ' ').slice(0, 19) })),
    });
  });
}
