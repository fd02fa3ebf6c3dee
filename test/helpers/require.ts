import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** True when running under CI (`.ci/run` sets CI=1): missing components are failures there. */
export const inCI = process.env.CI === '1' || process.env.CI === 'true';

/**
 * Returns false (the test should skip) when an executable is missing, with a
 * message naming the install command. Under CI a missing component throws.
 */
export function haveBinary(path: string, debianPackage: string): string | false {
  const found = path.startsWith('/') ? existsSync(path) : whichOk(path);
  if (found) return false;
  const message = `${path} not found: apt-get install -y ${debianPackage}`;
  if (inCI) throw new Error(`CI must not skip: ${message}`);
  return message;
}

function whichOk(name: string): boolean {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
