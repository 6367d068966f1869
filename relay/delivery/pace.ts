// Delivery transactions start a few per event-loop turn (issue 17: duplicates after kill -9).
// A receiver's 250 is at risk from the moment it is written until the relay has read and journalled
// it (relay/queue/journal.ts); while the relay is busy, it waits unread in our socket. When every
// reply read in a turn started the next transaction at once (sign, write) in the same turn, a
// turn's work grew with the number of connections, and so did the number of replies waiting
// for it: ~10 per kill with 20 connections (bench/crash-duplicates.ts). Starting at most a few per
// turn keeps each turn short, so replies are read (and journalled) within a turn of arriving. The
// work is the same, only ordered: reading replies first, starting new transactions after.
export class StartGate {
  private readonly perTurn: number;
  private waiting: (() => void)[] = [];
  /** otp mail: ahead of everything else waiting, so a bulk burst adds no turns to its latency. */
  private urgent: (() => void)[] = [];
  private scheduled = false;

  constructor(perTurn: number) {
    this.perTurn = perTurn;
  }

  /** Resolves in a coming turn's check phase (setImmediate), at most perTurn callers a turn, in order (urgent ones first). */
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
      const go = this.urgent.splice(0, this.perTurn);
      if (go.length < this.perTurn) go.push(...this.waiting.splice(0, this.perTurn - go.length));
      for (const resolve of go) resolve();
      if (this.waiting.length > 0 || this.urgent.length > 0) this.schedule();
    });
  }
}
