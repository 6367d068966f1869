// Which SMTP sessions of this thread are receiving DATA right now: the queue's commit delay
// (relay/queue/commit.ts, queue.commitDelayMs) waits for them so one fsync covers their messages.
// A session enters when DATA starts and leaves once: when its message is handed to the queue,
// refused, or the session dies mid-message. Leaving is idempotent and the count is the size of a
// set, so it cannot go negative or leak past a session's end (listeners.ts leaves in a finally).
import type { DataSessions } from '../queue/commit.ts';

export class DataSessionCount implements DataSessions {
  /** Sequence numbers of the sessions in DATA, oldest first (a Set keeps insertion order). */
  private readonly open = new Set<number>();
  lastEntered = 0;
  onLeave: (() => void) | undefined;

  get count(): number {
    return this.open.size;
  }

  oldest(): number | undefined {
    for (const seq of this.open) return seq;
    return undefined;
  }

  /** A session starts DATA; the function it gets back ends it (any number of calls, one effect). */
  enter(): () => void {
    const seq = ++this.lastEntered;
    this.open.add(seq);
    return () => {
      if (this.open.delete(seq)) this.onLeave?.();
    };
  }
}
