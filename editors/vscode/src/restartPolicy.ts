// When the language server dies, it is restarted — but not forever: a server that
// crashes again and again (a broken binary, a bad config) would spin. Five crashes
// within three minutes stop the restarts and the user is told.

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(
    private readonly maxRestarts = 5,
    private readonly windowMs = 3 * 60_000,
  ) {}

  /** Notes a crash at `now`; true when the server should be restarted. */
  crashed(now: number): boolean {
    this.crashes = this.crashes.filter((t) => now - t < this.windowMs);
    this.crashes.push(now);
    return this.crashes.length <= this.maxRestarts;
  }

  /** Forgets past crashes (after a manual restart). */
  reset(): void {
    this.crashes = [];
  }

  get recentCrashes(): number {
    return this.crashes.length;
  }
}
