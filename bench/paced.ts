/**
 * A paced HTTP load (child process of run.ts) for the latency figures "at half the rate": an
 * open loop that sends RATE requests a second, evenly spaced (a 1 ms tick sends what is due),
 * whatever comes back, over up to CONNECTIONS keep-alive connections, POSTing the lines of a
 * body file in turn. A request due while every connection is busy waits for the next free one,
 * and its latency counts from when it was due (no coordinated omission). autocannon's
 * `overallRate`, used before, gives each connection a quota per second and sends it at full
 * speed from the start of each second: a burst at full load for half of every second, not half
 * the load.
 *   node --import tsx bench/paced.ts URL BODIES RATE SECONDS CONNECTIONS  → one JSON line
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';

const [url, file, rateArg, secondsArg, connectionsArg] = process.argv.slice(2);
const bodies = readFileSync(file, 'utf8').split('\n').filter(Boolean);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connectionsArg), maxFreeSockets: Number(connectionsArg) });

let next = 0;
const counts = { accepted: 0, rejected: 0, non200: 0, errors: 0 };
const latencies: number[] = [];
let inFlight = 0;

function send(dueAt: number): void {
  const body = bodies[next++ % bodies.length];
  inFlight++;
  const req = http.request({
    host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
  }, (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (text += d));
    res.on('end', () => {
      inFlight--;
      latencies.push(performance.now() - dueAt);
      if (res.statusCode !== 200) counts.non200++;
      else if (text.includes('"value": true')) counts.accepted++;
      else counts.rejected++;
    });
  });
  req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  req.on('error', () => {
    inFlight--;
    counts.errors++;
  });
  req.end(body);
}

const started = performance.now();
let due = 0;
const pacer = setInterval(() => {
  const now = performance.now();
  // every request whose time has come, each with its own due time
  const owed = Math.floor(((now - started) / 1000) * rate);
  for (; due < owed; due++) send(started + (due * 1000) / rate);
}, 1);
await new Promise((r) => setTimeout(r, seconds * 1000));
clearInterval(pacer);
const answeredInWindow = latencies.length;
for (let waited = 0; inFlight > 0 && waited < 12_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
agent.destroy();
latencies.sort((a, b) => a - b);
const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : 0);
process.stdout.write(`${JSON.stringify({
  responses: answeredInWindow, served: latencies.length, duration_us: seconds * 1e6,
  p50_us: pct(0.5) * 1000, p99_us: pct(0.99) * 1000, max_us: (latencies.at(-1) ?? 0) * 1000,
  ...counts, sent: next, bodies: bodies.length,
})}\n`);
process.exit(0);
