import { accessSync, constants, mkdtempSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Room a test run may take in RAM: below it, temporary directories go to the disk. */
const MIN_FREE_BYTES = 512 * 1024 * 1024;

function ramDisk(): string | undefined {
  try {
    accessSync('/dev/shm', constants.W_OK);
    const s = statfsSync('/dev/shm');
    return s.bavail * s.bsize >= MIN_FREE_BYTES ? '/dev/shm' : undefined;
  } catch {
    return undefined;
  }
}

const root = process.env.OTPD_TEST_TMP ?? ramDisk() ?? tmpdir();

/**
 * A new temporary directory for a test's SQLite database and key file, in RAM (/dev/shm) when
 * there is room, else in the system's temporary directory (`OTPD_TEST_TMP` overrides).
 *
 * Why: SQLite runs with `synchronous=FULL`, so every commit waits for an fsync, and a fresh
 * database is ~40 commits of migrations before the first request. On a disk that is 0.3–0.8 s
 * per app on this kind of machine (most of what test/oob/challenges.test.ts spent: 20 s for
 * 19 tests); on tmpfs an fsync returns at once. The code under test is the same; durability
 * itself is tested with a killed process on the disk (test/core/process.test.ts).
 */
export function testTmpDir(prefix: string): string {
  return mkdtempSync(join(root, prefix));
}
