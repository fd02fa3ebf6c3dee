// Worker thread of the password-check pool (password-pool.ts). A plain .mjs entry so it loads
// however otpd was started (`node --import tsx`, bin/otpd.mjs, the test runner): it registers
// tsx itself and then loads the TypeScript that does the work.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { verifyCryptSync } = await import('./passwords.ts');

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
