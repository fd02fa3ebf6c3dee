import { OtpdError } from '../errors.ts';

/** Where a command prints; tests pass their own. @default process.stdout / process.stderr */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
  /** The command failed: sets the process exit code. */
  failed(code: number): void;
}

/** The process's standard output and error; `failed` sets the exit code. */
export const processOutput: CliOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  failed: (code) => void (process.exitCode = code),
};

/** A refusal as one line: `ERR<code>: <message>` for the catalogue's errors (as the API's envelope shows them), else the message. */
export function describeError(e: unknown): string {
  return e instanceof OtpdError ? `ERR${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
}

/**
 * Runs a command against a handle `open` gives (the configured instance's services) and closes
 * it; a failure prints `otpd: <reason>` (then `footer`, if any) on standard error and sets exit
 * code 1. `describe` turns the error into the reason. @default describeError
 */
export async function runWith<H extends { close(): Promise<void> }>(
  open: () => Promise<H>,
  io: CliOutput,
  fn: (handle: H) => Promise<void>,
  opts: { describe?: (e: unknown) => string; footer?: string } = {},
): Promise<void> {
  let handle: H | undefined;
  try {
    handle = await open();
    await fn(handle);
  } catch (e) {
    io.err(`otpd: ${(opts.describe ?? describeError)(e)}\n${opts.footer ?? ''}`);
    io.failed(1);
  } finally {
    await handle?.close();
  }
}
