// The bounce MX's consumer: what the MX-role listener does with a message instead of queueing it.
// It checks RCPT addresses against the return-path keys (mx-policy.ts), parses the message
// (parse.ts) and hands the record to onFeedback, which the rest of the relay injects (suppression,
// events, webhooks). The SMTP 250 is sent only after onFeedback resolved: the default
// (FeedbackLog) has then fsynced the record. Nothing received here is ever relayed.
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { RelayConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { loadReturnPathKeys } from '../returnpath/keys.ts';
import type { ReturnPathKey } from '../returnpath/token.ts';
import { decideBounceAddress, type BounceAddressDecision } from './mx-policy.ts';
import { parseReport, DEFAULT_VALIDITY_MS } from './parse.ts';
import type { FeedbackRecord } from './feedback-record.ts';
import { sendingDomainOf } from './hand-over.ts';

/** Takes one parsed report; resolves once it is durably recorded or handed over. */
export type OnFeedback = (record: FeedbackRecord) => Promise<void> | void;

export interface FeedbackConsumerOptions {
  config: RelayConfig;
  logger: Logger;
  /** Replaces the default (records.jsonl, then handOver) entirely; tests inject it. */
  onFeedback?: OnFeedback | undefined;
  /** After the default has fsynced a record: its attributed results to the suppression list and events. */
  handOver?: ((record: FeedbackRecord) => void) | undefined;
  clock?: (() => number) | undefined;
  /** Counts each consumed report (kind, token verdict); bounded labels. */
  count?: ((kind: string, token: 'trusted' | 'untrusted' | 'none') => void) | undefined;
  /** Counts each recipient a DSN says failed for good, by sending domain (or "other") and category. */
  countBounce?: ((sendingDomain: string, category: string) => void) | undefined;
}

/** Appends each record as one JSON line to <dataDir>/feedback/records.jsonl and fsyncs it. */
export class FeedbackLog {
  readonly file: string;
  private handle: Promise<FileHandle> | undefined;
  private tail: Promise<void> = Promise.resolve();

  constructor(dataDir: string) {
    this.file = join(dataDir, 'feedback', 'records.jsonl');
  }

  append(record: FeedbackRecord): Promise<void> {
    const line = JSON.stringify(record) + '\n';
    // One write at a time, in arrival order; a failed write rejects only its own caller.
    const done = this.tail.then(async () => {
      this.handle ??= mkdir(dirname(this.file), { recursive: true }).then(() => open(this.file, 'a'));
      const h = await this.handle;
      await h.write(line);
      await h.datasync();
    });
    this.tail = done.catch(() => {});
    return done;
  }

  async close(): Promise<void> {
    await this.tail;
    await (await this.handle)?.close();
  }
}

export class FeedbackConsumer {
  private readonly config: RelayConfig;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private domainsSeen: [RelayConfig['acceptDomains'], RelayConfig['domains']] | undefined;
  private domainSet = new Set<string>();
  private readonly onFeedback: OnFeedback;
  private readonly log: FeedbackLog | undefined;
  private readonly count: FeedbackConsumerOptions['count'];
  private readonly countBounce: FeedbackConsumerOptions['countBounce'];
  private keys: ReturnPathKey[] = [];
  private watcher: FSWatcher | undefined;

  constructor(opts: FeedbackConsumerOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.clock = opts.clock ?? Date.now;
    this.count = opts.count;
    this.countBounce = opts.countBounce;
    if (opts.onFeedback) this.onFeedback = opts.onFeedback;
    else {
      const log = new FeedbackLog(opts.config.dataDir);
      this.log = log;
      this.onFeedback = async (record) => {
        this.logger.info({ event: 'feedback', kind: record.kind, recipients: record.recipients.map((r) => `${r.address} ${r.status} ${r.category}${r.hard ? ' hard' : ''}`), token: record.token?.reason, queueId: record.token?.queueId, attributed: record.attributed }, 'feedback recorded');
        await log.append(record);
        opts.handOver?.(record);
      };
    }
    const file = opts.config.returnPath?.keysFile;
    if (file) {
      // A missing or broken keys file at start is a configuration error (named, exit 2); later
      // changes that break it keep the previous keys (a Secret being rotated).
      this.keys = loadReturnPathKeys(file);
      this.watcher = watch(dirname(file), () => {
        try {
          this.keys = loadReturnPathKeys(file);
          this.logger.info({ keys: this.keys.map((k) => k.id) }, 'return-path keys reloaded');
        } catch (err) {
          this.logger.error({ err: (err as Error).message }, 'return-path keys unreadable; keeping the previous ones');
        }
      });
      this.watcher.unref();
    }
  }

  /** acceptDomains and every returnPathDomain; derived again when a live reload replaced them (relay/config/live.ts). */
  private get bounceDomains(): Set<string> {
    const { acceptDomains, domains } = this.config;
    if (!this.domainsSeen || this.domainsSeen[0] !== acceptDomains || this.domainsSeen[1] !== domains) {
      const norm = (d: string) => d.toLowerCase().replace(/\.$/, '');
      this.domainSet = new Set([...acceptDomains.map(norm), ...domains.flatMap((d) => (d.returnPathDomain ? [norm(d.returnPathDomain)] : []))]);
      this.domainsSeen = [acceptDomains, domains];
    }
    return this.domainSet;
  }

  /** The keys tokens are signed with now (the first signs): the engine's return-path chooser reads them. */
  currentKeys(): readonly ReturnPathKey[] {
    return this.keys;
  }

  private get validityMs(): number {
    return this.config.returnPath ? this.config.returnPath.validityDays * 86_400_000 : DEFAULT_VALIDITY_MS;
  }

  decide(address: string): BounceAddressDecision {
    return decideBounceAddress(address, {
      bounceDomains: this.bounceDomains,
      feedbackLocalParts: this.config.returnPath?.feedbackLocalParts ?? ['fbl'],
      keys: this.keys,
      now: this.clock(),
      validityMs: this.validityMs,
      pool: this.config.returnPath?.pool,
    });
  }

  /** Parses one received report and hands it over; resolves when it is durable. */
  async consume(raw: Buffer, envelope: { mailFrom: string; rcptTo: string[]; clientAddress?: string }): Promise<FeedbackRecord> {
    const now = this.clock();
    const tokenRcpt = envelope.rcptTo.find((r) => this.decide(r).ok === true && (this.decide(r) as { as?: string }).as === 'token');
    let record: FeedbackRecord;
    try {
      record = parseReport(raw, {
        keys: this.keys,
        now,
        validityMs: this.validityMs,
        ...(this.config.returnPath ? { pool: this.config.returnPath.pool } : {}),
        ...(tokenRcpt ?? envelope.rcptTo[0] ? { envelopeRecipient: tokenRcpt ?? envelope.rcptTo[0] } : {}),
        rules: this.config.delivery.bounceRules,
      });
    } catch (err) {
      // The parser is lenient by design; should it still fail, the report is kept, unread.
      this.logger.error({ err }, 'report could not be parsed; recorded as unknown');
      record = { kind: 'unknown', recipients: [], attributed: false, size: raw.length };
    }
    record.envelope = { mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, ...(envelope.clientAddress ? { clientAddress: envelope.clientAddress } : {}), receivedAt: new Date(now).toISOString() };
    await this.onFeedback(record);
    this.count?.(record.kind, record.token ? (record.token.trusted ? 'trusted' : 'untrusted') : 'none');
    if (this.countBounce && record.kind === 'dsn') {
      const domain = this.sendingDomainOf(record, tokenRcpt);
      for (const r of record.recipients) if (r.status.startsWith('5')) this.countBounce(domain, r.category);
    }
    return record;
  }

  /** The sending domain whose bounce domain the trusted token was at; "other" when unattributed (a bounded label). */
  private sendingDomainOf(record: FeedbackRecord, tokenRcpt: string | undefined): string {
    if (!record.token?.trusted || !tokenRcpt) return 'other';
    return sendingDomainOf(record, this.config) ?? 'other';
  }

  async close(): Promise<void> {
    this.watcher?.close();
    await this.log?.close();
  }
}
