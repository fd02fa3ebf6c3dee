import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** A password check that could not run (pool full, worker crashed): not a wrong password. */
export class PasswordCheckUnavailable extends Error {
  constructor(reason: string) {
    super(`password check unavailable: ${reason}`);
    this.name = 'PasswordCheckUnavailable';
  }
}

export interface PasswordPoolOptions {
  /** Worker threads. @default min(2, available cores) */
  size?: number;
  /** Checks waiting for a worker beyond which new ones are refused. @default 256 */
  maxQueue?: number;
  /** A check running longer than this fails and its worker is replaced. @default 30000 */
  timeoutMs?: number;
}

interface Job {
  password: string;
  stored: string;
  resolve(ok: boolean): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  job?: Job & { id: number; timer: NodeJS.Timeout };
}

const WORKER_URL = new URL('./password-worker.mjs', import.meta.url);

/**
 * A small pool of worker threads for the slow crypt schemes (sha-crypt, md5-crypt, bcrypt,
 * scrypt), so one login never blocks the event loop for everyone else. Bounded in size and
 * queue; a crashed or stuck worker fails its check with {@link PasswordCheckUnavailable} and is
 * replaced. Workers are unref'd: an idle pool never keeps the process alive.
 */
export class PasswordPool {
  private readonly size: number;
  private readonly maxQueue: number;
  private readonly timeoutMs: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;

  constructor(opts: PasswordPoolOptions = {}) {
    this.size = Math.max(1, opts.size ?? Math.min(2, availableParallelism()));
    this.maxQueue = opts.maxQueue ?? 256;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** Verifies `password` against a crypt string in a worker. */
  verify(password: string, stored: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const job = { password, stored, resolve, reject };
      const idle = this.idleSlot();
      if (idle) return this.start(idle, job);
      if (this.queue.length >= this.maxQueue) return reject(new PasswordCheckUnavailable(`${this.queue.length} checks already waiting`));
      this.queue.push(job);
    });
  }

  /** Workers started so far (for tests). */
  get workers(): number {
    return this.slots.length;
  }

  /** Stops every worker; running and waiting checks fail. */
  async close(): Promise<void> {
    for (const job of this.queue.splice(0)) job.reject(new PasswordCheckUnavailable('pool closed'));
    await Promise.all(this.slots.splice(0).map((s) => {
      if (s.job) this.fail(s, 'pool closed');
      return s.worker.terminate();
    }));
  }

  private idleSlot(): Slot | undefined {
    const idle = this.slots.find((s) => !s.job);
    if (idle) return idle;
    if (this.slots.length < this.size) return this.spawn();
    return undefined;
  }

  private spawn(): Slot {
    // execArgv: [] — the .mjs entry registers tsx itself; inheriting `--import tsx` would load it twice.
    const worker = new Worker(WORKER_URL, { execArgv: [] });
    worker.unref();
    const slot: Slot = { worker };
    worker.on('message', (msg: { id?: number; ok?: boolean; error?: string; ready?: boolean }) => {
      const job = slot.job;
      if (msg.ready || !job || msg.id !== job.id) return;
      clearTimeout(job.timer);
      slot.job = undefined;
      if (msg.error !== undefined) job.reject(new Error(msg.error));
      else job.resolve(msg.ok === true);
      this.next(slot);
    });
    const lost = (reason: string) => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      if (slot.job) this.fail(slot, reason);
      // whoever waits gets a fresh worker
      const job = this.queue.shift();
      if (job) this.start(this.spawn(), job);
    };
    worker.on('error', (e) => lost(`worker failed (${e.message})`));
    worker.on('exit', (code) => lost(`worker exited (code ${code})`));
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, job: Job): void {
    const id = this.nextId++;
    const timer = setTimeout(() => {
      this.fail(slot, `check took longer than ${this.timeoutMs} ms`);
      void slot.worker.terminate();
    }, this.timeoutMs);
    timer.unref();
    slot.job = { ...job, id, timer };
    slot.worker.postMessage({ id, password: job.password, stored: job.stored });
    slot.worker.ref();
  }

  private next(slot: Slot): void {
    const job = this.queue.shift();
    if (job) this.start(slot, job);
    else slot.worker.unref();
  }

  private fail(slot: Slot, reason: string): void {
    const job = slot.job;
    if (!job) return;
    clearTimeout(job.timer);
    slot.job = undefined;
    job.reject(new PasswordCheckUnavailable(reason));
  }
}

let shared: PasswordPool | undefined;

/** The process-wide pool, started on first use. */
export function passwordPool(): PasswordPool {
  shared ??= new PasswordPool();
  return shared;
}
