/**
 * Recent durations of failures that checked a token, and the floor every failure answer is
 * held to: their 90th percentile, at most 50 ms. Only full checks feed it, so a flood of
 * unknown names cannot pull it below what a wrong OTP takes.
 */
export class FailureTimes {
  private readonly samples = new Float64Array(64);
  private count = 0;
  private cached = 0;
  private dirty = false;

  record(ms: number): void {
    this.samples[this.count++ % this.samples.length] = ms;
    this.dirty = true;
  }

  floor(): number {
    if (this.dirty) {
      const n = Math.min(this.count, this.samples.length);
      // a typed array sorts numerically, without a comparator call per pair
      const sorted = this.samples.slice(0, n).sort();
      this.cached = Math.min(50, sorted[Math.floor(n * 0.9)] ?? 0);
      this.dirty = false;
    }
    return this.cached;
  }
}
