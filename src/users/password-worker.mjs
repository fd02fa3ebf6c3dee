// Worker thread of the password-check pool (password-pool.ts). A plain .mjs entry so it loads
// however otpd was started: from the compiled build (dist/, where the build copies this file
// beside passwords.js) it loads that JavaScript; from the sources (`node --import tsx`, the
// test runner) it registers tsx itself and loads the TypeScript. tsx is a development
// dependency: a production install has only the first case, and never imports it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parentPort } from 'node:worker_threads';

const compiled = new URL('./passwords.js', import.meta.url);
let passwords;
if (existsSync(fileURLToPath(compiled))) passwords = await import(compiled.href);
else {
  const { register } = await import('tsx/esm/api');
  register();
  passwords = await import('./passwords.ts');
}
const { verifyCryptSync } = passwords;

parentPort.on('message', ({ id, password, stored }) => {
  let result;
  try {
    result = { id, ok: verifyCryptSync(password, stored) };
  } catch (e) {
    result = { id, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort.postMessage(result);
});
parentPort.postMessage({ ready: true });
