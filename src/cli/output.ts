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
