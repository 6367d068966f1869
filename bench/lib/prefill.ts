// A queue written before the relay starts, with the store's own enqueue (2,000 messages per group
// commit): the deep backlogs of the OTP, backlog and crash-duplicates runs. Each message is 1 KiB
// with one recipient `user<j>@bench.test` and Message-ID `<prefix>.<j>@<prefix>.bench.test`.
import { QueueStore } from '../../relay/queue/store.ts';
import type { MessageClass } from '../../relay/message-class.ts';
import { ACCEPT_DOMAIN } from './mailfleet.ts';
import { buildMessage } from './load.ts';

export async function prefillQueue(queueDir: string, opts: { count: number; first?: number; class?: MessageClass; from: string; prefix: string }): Promise<void> {
  const store = new QueueStore(queueDir);
  const first = opts.first ?? 0;
  const end = first + opts.count;
  try {
    for (let i = first; i < end; i += 2000) {
      const batch: Promise<string>[] = [];
      for (let j = i; j < Math.min(end, i + 2000); j++) {
        const id = `${opts.prefix}.${j}@${opts.prefix}.bench.test`;
        const to = `user${j}@${ACCEPT_DOMAIN}`;
        batch.push(store.enqueue({ mailFrom: opts.from, recipients: [to], body: buildMessage(id, opts.from, to, 1024), messageId: id, ...(opts.class ? { class: opts.class } : {}) }));
      }
      await Promise.all(batch);
    }
  } finally {
    await store.close();
  }
}
