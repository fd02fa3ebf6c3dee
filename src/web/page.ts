import { fileURLToPath } from 'node:url';
import view from '@fastify/view';
import fastifyStatic from '@fastify/static';
import { Eta } from 'eta';
import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * What every server-rendered page of otpd shares (`/manage/`, later `/selfservice/` and
 * `/demo/`): Eta templates under `web/`, assets served by otpd itself, and the headers of
 * a strict page: scripts and styles only from this server and never inline, no frames, forms
 * only to this server, no referrer.
 */
export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));

export const PAGE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'",
].join('; ');

export const PAGE_HEADERS: Record<string, string> = {
  'Content-Security-Policy': PAGE_CSP,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

/** Registers the template engine (once per app) and the asset folder of one face. */
export async function registerPages(app: FastifyInstance, face: { assets: string; prefix: string }): Promise<void> {
  if (!app.hasReplyDecorator('viewAsync')) {
    // templates are read once and cached; `it` values are escaped unless printed with <%~
    await app.register(view, { engine: { eta: new Eta({ views: WEB_ROOT, cache: true }) }, root: WEB_ROOT });
  }
  await app.register(fastifyStatic, {
    root: fileURLToPath(new URL(`../../web/${face.assets}`, import.meta.url)),
    prefix: face.prefix,
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'deny',
    setHeaders: (reply) => {
      reply.headers(PAGE_HEADERS);
      reply.header('Cache-Control', 'no-cache');
    },
  });
}

/** Renders a template (path under web/, without `.eta`) as a strict HTML page. */
export async function renderPage(reply: FastifyReply, template: string, data: Record<string, unknown>, status = 200): Promise<FastifyReply> {
  const html = await reply.viewAsync(`${template}.eta`, data);
  return reply.code(status).headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(html);
}
