/**
 * A RADIUS load generator (child process of run.ts): Access-Requests with
 * Message-Authenticator, User-Name and User-Password from the lines (`user<TAB>password`)
 * of a file in turn, over several UDP sockets (256 identifiers each).
 *   closed loop (RATE 0): CONCURRENCY requests outstanding, the next sent on each answer;
 *   open loop (RATE > 0): RATE requests a second whatever comes back (the overload case).
 * A request unanswered after TIMEOUT ms counts as timed out; an answer that comes after that
 * counts as late (answered after the client gave up), not as an answer.
 *   node --import tsx bench/radius-load.ts PORT SECRET FILE SECONDS CONCURRENCY RATE TIMEOUT_MS → one JSON line
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import radius from 'radius';

const [portArg, secret, file, secondsArg, concurrencyArg, rateArg, timeoutArg] = process.argv.slice(2);
const port = Number(portArg);
const seconds = Number(secondsArg);
const concurrency = Number(concurrencyArg);
const rate = Number(rateArg);
const timeoutMs = Number(timeoutArg);
const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]);

interface Slot { sentAt: number; timer?: NodeJS.Timeout; gaveUp: boolean }
interface Sock { socket: dgram.Socket; slots: (Slot | undefined)[]; free: number[] }

// an identifier stays taken for the timeout and 5 s after it (to recognise a late answer)
const socketCount = rate > 0 ? Math.max(4, Math.ceil((rate * (timeoutMs + 5000)) / 1000 / 200)) : Math.max(1, Math.ceil(concurrency / 200));
const sockets: Sock[] = [];
const latencies: number[] = [];
const counts = { sent: 0, accept: 0, reject: 0, challenge: 0, other: 0, timeouts: 0, late: 0, noIdentifier: 0 };
let next = 0;
let running = true;
let outstanding = 0;

for (let k = 0; k < socketCount; k++) {
  const socket = dgram.createSocket('udp4');
  const s: Sock = { socket, slots: new Array(256), free: Array.from({ length: 256 }, (_, i) => i) };
  socket.on('message', (msg) => onAnswer(s, msg));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  sockets.push(s);
}

function onAnswer(s: Sock, msg: Buffer): void {
  const id = msg[1];
  const slot = s.slots[id];
  if (!slot) return;
  s.slots[id] = undefined;
  s.free.push(id);
  if (slot.gaveUp) {
    counts.late++;
    return;
  }
  clearTimeout(slot.timer);
  outstanding--;
  latencies.push(performance.now() - slot.sentAt);
  const code = msg[0];
  if (code === 2) counts.accept++;
  else if (code === 3) counts.reject++;
  else if (code === 11) counts.challenge++;
  else counts.other++;
  if (rate === 0 && running) send();
}

let turn = 0;
function send(): void {
  const s = sockets[turn++ % sockets.length];
  const id = s.free.shift();
  if (id === undefined) {
    counts.noIdentifier++;
    return;
  }
  const [user, password] = lines[next++ % lines.length];
  const packet = radius.encode({
    code: 'Access-Request', secret, identifier: id,
    add_message_authenticator: true,
    attributes: [['User-Name', user], ['User-Password', password], ['NAS-IP-Address', '127.0.0.1']],
  });
  const slot: Slot = { sentAt: performance.now(), gaveUp: false };
  slot.timer = setTimeout(() => {
    slot.gaveUp = true;
    outstanding--;
    counts.timeouts++;
    if (rate === 0 && running) send();
    // the identifier stays taken a while, so a late answer is still recognised
    setTimeout(() => {
      if (s.slots[id] === slot) {
        s.slots[id] = undefined;
        s.free.push(id);
      }
    }, 5000).unref();
  }, timeoutMs);
  s.slots[id] = slot;
  outstanding++;
  counts.sent++;
  s.socket.send(packet, port, '127.0.0.1');
}

const started = performance.now();
let pacer: NodeJS.Timeout | undefined;
if (rate === 0) {
  for (let k = 0; k < concurrency; k++) send();
} else {
  let owed = 0;
  let last = started;
  pacer = setInterval(() => {
    const now = performance.now();
    owed += ((now - last) / 1000) * rate;
    last = now;
    while (owed >= 1) {
      owed--;
      send();
    }
  }, 2);
}
await new Promise((r) => setTimeout(r, seconds * 1000));
const answeredInWindow = counts.accept + counts.reject + counts.challenge + counts.other;
running = false;
clearInterval(pacer);
const elapsed = (performance.now() - started) / 1000;
// let what is in flight answer (or time out), and late answers arrive
await new Promise((r) => setTimeout(r, Math.min(timeoutMs + 500, 3000)));
for (const s of sockets) s.socket.close();
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : 0;
const answered = counts.accept + counts.reject + counts.challenge + counts.other;
process.stdout.write(`${JSON.stringify({
  ...counts, answered, outstanding, seconds: elapsed, rps: answeredInWindow / elapsed, p50_ms: pct(0.5), p99_ms: pct(0.99), max_ms: latencies.at(-1) ?? 0,
})}\n`);
process.exit(0);
