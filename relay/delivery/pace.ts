// Delivery transactions start a few per event-loop turn (issue 17: duplicates after kill -9).
// A receiver's 250 is at risk from the moment it is written until the relay has read and journalled
// it (relay/queue/journal.ts); while the relay is busy, it waits unread in our socket. When every
// reply read in a turn started the next transaction at once (sign, write) in the same turn, a
// turn's work grew with the number of connections, and so did the number of replies waiting
// for it: ~10 per kill with 20 connections (bench/crash-duplicates.ts). Starting one per turn
// keeps each turn short, so replies are read (and journalled) within a turn of arriving.
// The count follows the main thread's CPU since the last release, one start per cpuMsPerStart:
// a turn that was long anyway (the intake's sessions) lets as many go as the intake brought in,
// so delivery keeps pace with it (one a turn fell behind a busy intake: bench threads). CPU, not
// wall time: a relay the machine left waiting would otherwise release a burst.
export class StartGate {
  private readonly cpuMsPerStart: number;
  private readonly maxPerTurn: number;
  private waiting: (() => void)[] = [];
  /** otp mail: ahead of everything else waiting, so a bulk burst adds no turns to its latency. */
  private urgent: (() => void)[] = [];
  private scheduled = false;
  private lastCpuMs = threadCpuMs();

  constructor(options: { cpuMsPerStart: number; maxPerTurn: number }) {
    this.cpuMsPerStart = options.cpuMsPerStart;
    this.maxPerTurn = options.maxPerTurn;
  }

  /** Resolves in a coming turn's check phase (setImmediate), a few callers a turn, in order (urgent ones first). */
  next(urgent = false): Promise<void> {
    return new Promise((resolve) => {
      (urgent ? this.urgent : this.waiting).push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // An immediate queued while immediates run waits for the next turn: the poll between reads
    // the replies that came in meanwhile.
    setImmediate(() => {
      this.scheduled = false;
      const cpu = threadCpuMs();
      const n = Math.min(this.maxPerTurn, Math.max(1, Math.floor((cpu - this.lastCpuMs) / this.cpuMsPerStart)));
      this.lastCpuMs = cpu;
      const go = this.urgent.splice(0, n);
      if (go.length < n) go.push(...this.waiting.splice(0, n - go.length));
      for (const resolve of go) resolve();
      if (this.waiting.length > 0 || this.urgent.length > 0) this.schedule();
    });
  }
}

/** CPU time of this thread (the event loop's), ms. */
function threadCpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}
