import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../fixtures/slapd.ts';
import { waitFor } from './wait.ts';

export const BIN = join(import.meta.dirname, '../../bin/otpd.mjs');

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  port: number;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `otpd serve` as a child process, as an operator starts it (bin/otpd.mjs, the compiled
 * build), on a data directory under `dir` and a free loopback port; resolves once `ready`
 * (by default: /healthz answers 200) holds.
 */
export async function spawnServe(dir: string, env: Record<string, string> = {}, opts: { ready?: (port: number) => Promise<boolean>; timeoutMs?: number } = {}): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve'], {
    cwd: dir,
    env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: String(port), OTPD_LOG_LEVEL: 'info', OTPD_LOG_FORMAT: 'json', ...env },
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  const ready = opts.ready ?? (async (p: number) => (await fetch(`http://127.0.0.1:${p}/healthz`).catch(() => undefined))?.ok ?? false);
  await waitFor(async () => {
    if (gone) throw new Error('the process exited');
    return ready(port);
  }, { what: 'otpd serve to answer', timeoutMs: opts.timeoutMs ?? 20_000, intervalMs: 50 }).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}; its output:\n${output}`);
  });
  return {
    child, port, url: `http://127.0.0.1:${port}`, exited,
    output: () => output,
    stop: async () => {
      if (!gone) child.kill('SIGTERM');
      return exited;
    },
  };
}
