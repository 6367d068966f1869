// Webhooks: the events of a sending domain POSTed in batches to the customer's URL, signed, at
// least once. The outbox is durable (relay/events/store.ts); a failed batch is tried again with
// backoff until maxAgeSeconds after the event, then dead-lettered and counted. An event keeps its
// id on every retry (SendGrid's changing sg_event_id is a known complaint). docs/events.md.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { EventStore, OutboxRow } from './store.ts';

export const SIGNATURE_HEADER = 'mailfleet-signature';

/**
 * `t=<unix seconds>,kid=<key id>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the timestamp is
 * signed so a captured request cannot be replayed later (receivers reject old ones), the key id
 * lets a receiver hold two secrets while one is rotated.
 */
export function signWebhook(secret: string | Buffer, keyId: string, timestampSeconds: number, body: string | Buffer): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
  return `t=${timestampSeconds},kid=${keyId},v1=${mac}`;
}

/** The receiver's check (tests and docs/events.md use the same algorithm). */
export function verifyWebhook(header: string, body: string | Buffer, secrets: Record<string, string | Buffer>, nowSeconds: number, toleranceSeconds = 300): boolean {
  const fields = Object.fromEntries(header.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')).trim(), kv.slice(kv.indexOf('=') + 1).trim()]));
  const t = Number(fields.t);
  const secret = fields.kid !== undefined ? secrets[fields.kid] : undefined;
  if (!Number.isInteger(t) || secret === undefined || !fields.v1 || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const want = Buffer.from(signWebhook(secret, fields.kid!, t, body).split('v1=')[1]!, 'hex');
  const got = Buffer.from(fields.v1, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

export interface WebhookTarget {
  url: string;
  secret: string;
  keyId: string;
}

export interface WebhookOptions {
  maxAgeSeconds: number;
  firstRetrySeconds: number;
  maxRetrySeconds: number;
  batchSize: number;
  timeoutMs: number;
}

/** Seconds before the n-th retry (n ≥ 1): doubling from firstRetrySeconds, capped. Pure. */
export function retryDelaySeconds(n: number, o: Pick<WebhookOptions, 'firstRetrySeconds' | 'maxRetrySeconds'>): number {
  return Math.min(o.maxRetrySeconds, o.firstRetrySeconds * 2 ** Math.max(0, n - 1));
}

/** Replies that say "never send this again" (Mailgun's 406; 410 Gone): dead at once. */
const REFUSED = new Set([406, 410]);

export interface WebhookObserver {
  delivered?(domain: string, events: number, lagSeconds: number): void;
  retried?(domain: string, events: number, error: string): void;
  dead?(domain: string, events: number): void;
}

export class WebhookDispatcher {
  private readonly events: EventStore;
  private readonly targets: ReadonlyMap<string, WebhookTarget>;
  private readonly options: WebhookOptions;
  private readonly clock: () => number;
  private readonly observer: WebhookObserver;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private ticking: Promise<void> | undefined;
  private again = false;

  constructor(o: { events: EventStore; targets: ReadonlyMap<string, WebhookTarget>; options: WebhookOptions; clock?: () => number; observer?: WebhookObserver }) {
    this.events = o.events;
    this.targets = o.targets;
    this.options = o.options;
    this.clock = o.clock ?? Date.now;
    this.observer = o.observer ?? {};
  }

  /** Sends everything due now, batch by batch, domain by domain; resolves when done. */
  tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return this.ticking;
    }
    // Awaits first, so the finally below never runs before the assignment (a tick with nothing
    // due would otherwise leave a settled promise behind and every later tick would return it).
    const run = (async () => {
      await Promise.resolve();
      try {
        do {
          this.again = false;
          for (const domain of this.events.dueDomains(this.clock())) await this.drain(domain);
        } while (this.again);
      } finally {
        this.ticking = undefined;
      }
    })();
    this.ticking = run;
    return this.ticking;
  }

  private async drain(domain: string): Promise<void> {
    const target = this.targets.get(domain);
    for (;;) {
      const now = this.clock();
      const rows = this.events.due(domain, now, this.options.batchSize);
      if (rows.length === 0) return;
      const error = target ? await this.post(target, rows, now) : 'no webhook configured for this domain any more';
      if (error === undefined) {
        this.events.delivered(domain, rows.map((r) => r.seq));
        this.observer.delivered?.(domain, rows.length, Math.max(0, (now - Math.min(...rows.map((r) => r.firstAt))) / 1000));
        continue;
      }
      const refused = REFUSED.has(Number(/^HTTP (\d+)/.exec(error)?.[1]));
      const dead = this.events.failed(
        domain, rows, error, now,
        (n) => now + retryDelaySeconds(n, this.options) * 1000,
        (r: OutboxRow) => refused || !target || now + retryDelaySeconds(r.attempts + 1, this.options) * 1000 - r.firstAt > this.options.maxAgeSeconds * 1000,
      );
      if (dead > 0) this.observer.dead?.(domain, dead);
      if (rows.length - dead > 0) this.observer.retried?.(domain, rows.length - dead, error);
      return; // this receiver is failing: the rest of its events wait for their own retry time
    }
  }

  /** undefined when the receiver took the batch (2xx); otherwise why not. */
  private async post(target: WebhookTarget, rows: readonly OutboxRow[], now: number): Promise<string | undefined> {
    const body = JSON.stringify({ events: rows.map((r) => r.event) });
    const t = Math.floor(now / 1000);
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signWebhook(target.secret, target.keyId, t, body), 'user-agent': 'mailfleet-webhook/1' },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return e.cause?.code ?? e.name ?? e.message;
    }
  }

  /** Sends in the background: when events are recorded (poke) and when retries come due. */
  start(): void {
    this.running = true;
    this.schedule(0);
  }

  /** New events were recorded. */
  poke(): void {
    if (this.running) this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.tick().finally(() => {
        if (!this.running) return;
        const next = this.events.nextDueAt();
        // Capped: the clock may be stepped, and a poke may have come while sending.
        if (next !== undefined) this.schedule(Math.min(Math.max(0, next - this.clock()), 60_000));
      });
    }, delayMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.ticking;
  }
}
