/**
 * A paced HTTP load (child process of run.ts): autocannon at a fixed overall rate, POSTing
 * the lines of a body file in turn, for the latency figures "at half the rate".
 *   node --import tsx bench/paced.ts URL BODIES RATE SECONDS CONNECTIONS  → one JSON line
 */
import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';

const [url, file, rate, seconds, connections] = process.argv.slice(2);
const bodies = readFileSync(file, 'utf8').split('\n').filter(Boolean);
let next = 0;
let accepted = 0;
let rejected = 0;
let other = 0;
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  overallRate: Number(rate),
  requests: [{
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    setupRequest: (req: Record<string, unknown>) => ({ ...req, body: bodies[next++ % bodies.length] }),
    onResponse: (status: number, body: string) => {
      if (status !== 200) other++;
      else if (body.includes('"value": true')) accepted++;
      else rejected++;
    },
  }],
});
process.stdout.write(`${JSON.stringify({
  responses: result.requests.total, duration_us: Number(seconds) * 1e6,
  p50_us: result.latency.p50 * 1000, p99_us: result.latency.p99 * 1000, max_us: result.latency.max * 1000,
  accepted, rejected, non200: other, errors: result.errors + result.timeouts, sent: next, bodies: bodies.length,
})}\n`);
