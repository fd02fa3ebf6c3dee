// Preloaded into an otpd process by a fault test (`node --expose-gc --import <this file>
// bin/otpd.mjs serve`), never by otpd itself: on SIGUSR2 it runs a full garbage collection and
// writes process.memoryUsage() as one JSON line to OTPD_TEST_HEAP_FILE, so the test reads the
// heap that is still reachable (steadier than RSS, which V8 keeps after a peak). With
// OTPD_TEST_HEAP_SNAPSHOTS (a folder) it also writes a heap snapshot there each time, for a
// diff by constructor when the heap grows. With OTPD_TEST_HEAP_TRACE (a file) it appends
// process.memoryUsage() without a collection every 500 ms, so a test can tell V8's heap (which
// grows with the allocation rate up to a multiple of what is live) from memory outside it.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const file = process.env.OTPD_TEST_HEAP_FILE;
const snapshots = process.env.OTPD_TEST_HEAP_SNAPSHOTS;
let taken = 0;
if (file) {
  process.on('SIGUSR2', () => {
    // without --expose-gc the numbers would include garbage: the test gets no numbers then
    if (typeof globalThis.gc !== 'function') return appendFileSync(file, `${JSON.stringify({ error: 'started without --expose-gc' })}\n`);
    globalThis.gc();
    globalThis.gc();
    const snapshot = snapshots ? writeHeapSnapshot(join(snapshots, `heap-${++taken}.heapsnapshot`)) : undefined;
    appendFileSync(file, `${JSON.stringify({ ...process.memoryUsage(), snapshot })}\n`);
  });
}
const trace = process.env.OTPD_TEST_HEAP_TRACE;
if (trace) setInterval(() => appendFileSync(trace, `${JSON.stringify({ t: Date.now(), ...process.memoryUsage() })}\n`), 500).unref();
