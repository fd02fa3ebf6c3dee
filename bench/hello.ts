/** Baseline H: a Fastify hello-world (child process of run.ts, pinned like an otpd node). */
import Fastify from 'fastify';

const app = Fastify();
app.get('/', async () => ({ hello: 'world' }));
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.on('message', (m: { kind: string }) => {
  if (m.kind === 'stop') void app.close().then(() => process.exit(0));
});
process.send!({ kind: 'ready', url });
