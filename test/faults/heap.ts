/**
 * Reading otpd's memory after a full garbage collection: the process runs with
 * {@link HEAP_PROBE_ARGS} and OTPD_TEST_HEAP_FILE (test/faults/heap-probe.mjs answers SIGUSR2
 * with process.memoryUsage() after two GCs), so a test sees the heap still reachable, which
 * stays put when RSS does not (V8 and malloc keep pages after a peak).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { waitFor } from '../helpers/wait.ts';

export const HEAP_PROBE_ARGS = ['--expose-gc', '--import', pathToFileURL(join(import.meta.dirname, 'heap-probe.mjs')).href];

export interface MemoryAfterGc { heapMb: number; heapTotalMb: number; rssMb: number; rssAnonMb: number }

/** The lines the heap probe wrote to `file` so far (none before its first). */
const probeLines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/** Signals `pid`, waits for the probe's next line in `file`, returns the figures in MB. */
export async function memoryAfterGc(pid: number, file: string): Promise<MemoryAfterGc> {
  const before = probeLines(file).length;
  process.kill(pid, 'SIGUSR2');
  const line = await waitFor(() => probeLines(file)[before], { what: 'the heap probe to answer', timeoutMs: 120_000, intervalMs: 50 });
  const m = JSON.parse(line) as NodeJS.MemoryUsage & { error?: string };
  assert.equal(m.error, undefined, 'the heap probe');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { heapMb: m.heapUsed / 2 ** 20, heapTotalMb: m.heapTotal / 2 ** 20, rssMb: kb('VmRSS') / 1024, rssAnonMb: kb('RssAnon') / 1024 };
}

export interface MemoryPeak { rssMb: number; heapTotalMb: number; outsideHeapMb: number }

/**
 * The peaks of the probe's trace (OTPD_TEST_HEAP_TRACE: memoryUsage() every 500 ms, no
 * collection) between two times: RSS, V8's heap as sized (heapTotal), and RSS minus heapTotal
 * (what malloc, buffers and code hold outside V8's heap), each its own maximum, in MB.
 */
export function memoryPeak(file: string, fromMs: number, toMs: number): MemoryPeak {
  const rows = probeLines(file)
    .map((l) => JSON.parse(l) as NodeJS.MemoryUsage & { t: number })
    .filter((r) => r.t >= fromMs && r.t <= toMs);
  assert.ok(rows.length > 0, `the heap trace has no line between ${fromMs} and ${toMs}`);
  const max = (f: (r: NodeJS.MemoryUsage) => number) => Math.round(Math.max(...rows.map(f)) / 2 ** 20);
  return { rssMb: max((r) => r.rss), heapTotalMb: max((r) => r.heapTotal), outsideHeapMb: max((r) => r.rss - r.heapTotal) };
}
