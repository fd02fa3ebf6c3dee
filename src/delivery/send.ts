import type { OutgoingMessage, Provider, SendResult } from './types.ts';

/**
 * One provider call, always bounded: the provider's own timeout, then a hard stop one
 * second later (the signal is aborted and the attempt counts as transient). A provider
 * that throws instead of answering is transient too.
 */
export async function sendBounded(provider: Provider, message: OutgoingMessage, timeoutMs: number): Promise<SendResult> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const hardStop = new Promise<SendResult>((resolve) => {
    timer = setTimeout(() => {
      ac.abort();
      resolve({ kind: 'transient', reason: `provider did not answer within ${timeoutMs} ms` });
    }, timeoutMs + 1000);
  });
  try {
    return await Promise.race([
      provider.send(message, ac.signal).catch((e: unknown): SendResult => ({ kind: 'transient', reason: `provider error: ${(e as Error)?.message ?? String(e)}` })),
      hardStop,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
