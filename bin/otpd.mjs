#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (`npm run build`, also run by `npm install`/`npm ci`).
// When a source in src/ is newer than the build, dist/ is rebuilt first (about 0.3 s), so a
// development checkout never runs stale code; a current build costs a few stat calls.
import { ensureBuilt } from '../scripts/build.mjs';

try {
  await ensureBuilt();
} catch (e) {
  process.stderr.write(`otpd: ${e.message}\n`);
  process.exit(1);
}
await import('../dist/main.js');
