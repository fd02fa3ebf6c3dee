/**
 * One otpd node for the bench (child process of run.ts): the compiled JavaScript of dist/, as
 * production runs it (bin/otpd.mjs; no TypeScript loader, whose thread would add its own heap
 * and CPU), rebuilt first when a source is newer. `startServer` on the data directory
 * and settings in the environment, plus what the orchestrator asks over IPC: the event-loop
 * delay (reset / read, perf_hooks histogram), a wait until no HTTP request is in flight, and a clean stop (so --cpu-prof writes its file).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ensureBuilt } from '../scripts/build.mjs';

// BENCH_DIST: another build's dist/ (bench/cpu-ab.ts compares two), taken as it is
const dist = process.env.BENCH_DIST ?? new URL('../dist', import.meta.url).pathname;
if (!process.env.BENCH_DIST) await ensureBuilt();
const { loadSettings } = await import(`${dist}/config/settings.js`);
const { startServer } = await import(`${dist}/server.js`);

const delay = monitorEventLoopDelay({ resolution: 2 });
delay.enable();
const running = await startServer(loadSettings(process.env, process.env.BENCH_DIR));
// HTTP requests in flight, so the orchestrator can wait until the last one answered (and
// wrote) before it reads the counters for the next case's OTPs
let inFlight = 0;
running.app.server.on('request', (_req, res) => {
  inFlight++;
  res.once('close', () => inFlight--);
});

process.on('message', (m) => {
  if (m.kind === 'reset') {
    delay.reset();
    process.send({ kind: 'reset' });
  } else if (m.kind === 'delay') {
    process.send({ kind: 'delay', p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 });
  } else if (m.kind === 'idle') {
    // quiet twice, 100 ms apart: a request still in a socket buffer when the load ended is
    // not in flight yet at the first look
    let quiet = 0;
    const poll = () => {
      quiet = inFlight === 0 ? quiet + 1 : 0;
      if (quiet < 2) return void setTimeout(poll, quiet ? 100 : 10);
      void running.services.audit.settled().then(() => process.send({ kind: 'idle' }));
    };
    poll();
  } else if (m.kind === 'stop') {
    void running.stop().then(() => process.exit(0));
  }
});
process.send({ kind: 'ready', url: running.url });
