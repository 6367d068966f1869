// The relay's authenticated HTTP API for suppressions, events and message tracking. Bearer token
// from a file (a Secret), read at each request so a rotated Secret applies without a restart;
// no token file configured: every request is refused (401), never open. docs/events.md.
import { readFileSync } from 'node:fs';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Route } from '../http/server.ts';
import { sendJson } from '../http/server.ts';
import type { QueueStore } from '../queue/store.ts';
import type { Feedback } from './feedback.ts';
import { suppressionCsv } from '../suppression/csv.ts';
import { normaliseAddress, normaliseScope, SUPPRESSION_REASONS, type SuppressionReason } from '../suppression/rules.ts';

const MAX_JSON_BYTES = 1 << 20;

function tokenMatches(header: string | undefined, file: string | undefined): boolean {
  if (!file || !header?.startsWith('Bearer ')) return false;
  let want: string;
  try {
    want = readFileSync(file, 'utf8').trim();
  } catch {
    return false;
  }
  if (!want) return false;
  // Compared as hashes: equal length, constant time.
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(header.slice(7).trim()), h(want));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_JSON_BYTES) throw new HttpError(413, `body larger than ${MAX_JSON_BYTES} bytes (use POST /v1/suppressions/import with CSV)`);
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `body is not JSON: ${(err as Error).message}`);
  }
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface ApiDeps {
  feedback: Feedback;
  store: QueueStore;
  tokenFile: string | undefined;
  clock?: () => number;
}

export function feedbackRoutes(d: ApiDeps): Record<string, Route> {
  const clock = d.clock ?? Date.now;
  const guard = (fn: (req: IncomingMessage, res: ServerResponse, q: URLSearchParams) => Promise<void> | void): Route => async (req, res) => {
    if (!tokenMatches(req.headers.authorization, d.tokenFile)) {
      res.setHeader('www-authenticate', 'Bearer realm="mailfleet"');
      return sendJson(res, 401, { error: d.tokenFile ? 'missing or wrong bearer token' : 'the API is disabled: feedback.apiTokenFile is not configured' });
    }
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    try {
      await fn(req, res, q);
    } catch (err) {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
      if ((err as Error).name === 'AddressError') return sendJson(res, 400, { error: (err as Error).message });
      throw err;
    }
  };
  const opt = (q: URLSearchParams, k: string) => q.get(k) ?? undefined;
  const reasonOf = (v: string | undefined): SuppressionReason | undefined => {
    if (v === undefined) return undefined;
    if (!SUPPRESSION_REASONS.includes(v as SuppressionReason)) throw new HttpError(400, `reason: "${v}" is not one of ${SUPPRESSION_REASONS.join(', ')}`);
    return v as SuppressionReason;
  };
  const limitOf = (q: URLSearchParams) => {
    const l = Number(q.get('limit') ?? 1000);
    if (!Number.isInteger(l) || l < 1 || l > 100_000) throw new HttpError(400, 'limit: a whole number from 1 to 100000');
    return l;
  };

  return {
    '/v1/suppressions': guard(async (req, res, q) => {
      const scope = q.has('scope') ? normaliseScope(q.get('scope')!) : undefined;
      if (req.method === 'GET') {
        const a = opt(q, 'address');
        const list = a ? d.feedback.suppressions.get(a, scope) : d.feedback.suppressions.list({ scope, reason: reasonOf(opt(q, 'reason')), after: opt(q, 'after'), limit: limitOf(q) });
        return sendJson(res, 200, { entries: list });
      }
      if (req.method === 'POST') {
        const body = await readJson(req);
        const items = (Array.isArray(body) ? body : [body]) as Record<string, unknown>[];
        const now = clock();
        const entries = items.map((x, i) => {
          if (typeof x !== 'object' || x === null || typeof x.address !== 'string') throw new HttpError(400, `[${i}].address: required (a string)`);
          const reason = reasonOf(typeof x.reason === 'string' ? x.reason : 'manual')!;
          const expiresAt = x.expiresAt === undefined || x.expiresAt === null ? null : Date.parse(String(x.expiresAt));
          if (expiresAt !== null && !Number.isFinite(expiresAt)) throw new HttpError(400, `[${i}].expiresAt: not an ISO 8601 time`);
          return {
            address: normaliseAddress(x.address), scope: normaliseScope(typeof x.scope === 'string' ? x.scope : '*'), reason,
            detail: typeof x.detail === 'string' ? x.detail.slice(0, 500) : 'added through the API', sourceQueueId: null, sourceEventId: null,
            firstSeen: now, lastSeen: now, expiresAt,
          };
        });
        d.feedback.addManual(entries);
        return sendJson(res, 201, { added: entries.length, entries });
      }
      if (req.method === 'DELETE') {
        const a = opt(q, 'address');
        if (!a) throw new HttpError(400, 'address: required');
        const removed = d.feedback.removeEntries(a, scope);
        return sendJson(res, removed > 0 ? 200 : 404, { removed });
      }
      throw new HttpError(405, `${req.method} not allowed`);
    }),
    '/v1/suppressions/import': guard(async (req, res, q) => {
      if (req.method !== 'POST') throw new HttpError(405, 'POST a CSV body');
      const r = await d.feedback.importCsv(req, { now: clock(), defaultReason: reasonOf(opt(q, 'reason')), defaultScope: opt(q, 'scope') });
      return sendJson(res, r.problems.length ? 422 : 200, { imported: r.imported, seconds: r.seconds, problems: r.problems.slice(0, 100), skipped: r.problems.length });
    }),
    '/v1/suppressions/export': guard(async (_req, res, q) => {
      res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8' });
      await pipeline(suppressionCsv(d.feedback.suppressions.iterate({ scope: q.has('scope') ? normaliseScope(q.get('scope')!) : undefined, reason: reasonOf(opt(q, 'reason')) })), res);
    }),
    '/v1/events': guard(async (_req, res, q) => {
      // Read your writes: events of the last few hundred ms wait for their batch (relay/feedback/feedback.ts).
      d.feedback.flush();
      const filter = { queueId: opt(q, 'queueId'), messageId: opt(q, 'messageId'), recipient: opt(q, 'recipient'), tag: opt(q, 'tag'), limit: limitOf(q) };
      const after = q.has('after') ? Number(q.get('after')) : undefined;
      // With PostgreSQL, the fleet's events (any relay answers for any message); `after` tails this relay's.
      if (d.feedback.fleet && after === undefined && (filter.queueId || filter.messageId || filter.recipient || filter.tag)) {
        try {
          return sendJson(res, 200, { source: 'fleet', events: await d.feedback.fleet.queryEvents(filter) });
        } catch {
          // PostgreSQL away: this relay's own events, said so.
        }
      }
      sendJson(res, 200, { source: 'relay', events: d.feedback.events.query({ ...filter, afterSeq: after }) });
    }),
    '/v1/messages': guard(async (_req, res, q) => {
      d.feedback.flush();
      const filter = { queueId: opt(q, 'queueId'), messageId: opt(q, 'messageId'), recipient: opt(q, 'recipient'), tag: opt(q, 'tag'), limit: limitOf(q) };
      if (!filter.queueId && !filter.messageId && !filter.recipient && !filter.tag) throw new HttpError(400, 'one of queueId, messageId, recipient, tag is required');
      let events: Record<string, unknown>[] | undefined;
      let source = 'relay';
      if (d.feedback.fleet) {
        try {
          events = (await d.feedback.fleet.queryEvents(filter)) as Record<string, unknown>[];
          source = 'fleet';
        } catch {
          // fall back to this relay's own
        }
      }
      events ??= d.feedback.events.query(filter) as unknown as Record<string, unknown>[];
      sendJson(res, 200, { source, messages: trackMessages(events, d.store) });
    }),
  };
}

const FINAL: Record<string, string> = { delivered: 'delivered', bounced: 'bounced', expired: 'expired', suppressed: 'suppressed', complained: 'complained', unsubscribed: 'unsubscribed' };

/** Events → per message, per recipient: its state (the latest telling event, or the queue's) and its events. */
export function trackMessages(events: readonly Record<string, unknown>[], store: QueueStore) {
  const byMessage = new Map<string, { queueId: string; messageId: unknown; sendingDomain: unknown; tags: unknown; recipients: Map<string, { recipient: string; state: string; events: unknown[] }> }>();
  for (const e of events) {
    const qid = String(e.queueId ?? '');
    let m = byMessage.get(qid);
    if (!m) byMessage.set(qid, (m = { queueId: qid, messageId: e.messageId, sendingDomain: e.sendingDomain, tags: e.tags, recipients: new Map() }));
    const rcpt = String(e.recipient ?? '');
    let r = m.recipients.get(rcpt);
    if (!r) m.recipients.set(rcpt, (r = { recipient: rcpt, state: 'accepted', events: [] }));
    r.events.push(e);
    const t = String(e.type);
    // A complaint or unsubscribe after delivery is news; a deferral after a final state is not.
    if (FINAL[t]) r.state = FINAL[t]!;
    else if (t === 'deferred' && r.state === 'accepted') r.state = 'deferred';
  }
  return [...byMessage.values()].map((m) => {
    const queued = m.queueId ? store.get(m.queueId) : undefined;
    return {
      queueId: m.queueId, messageId: m.messageId, sendingDomain: m.sendingDomain, tags: m.tags, inQueue: queued !== undefined,
      recipients: [...m.recipients.values()].map((r) => {
        const q = queued?.recipients.find((x) => x.recipient.toLowerCase() === r.recipient);
        return { ...r, ...(q && (r.state === 'accepted' || r.state === 'deferred') ? { state: q.state, attempts: q.attempts, nextAttemptAt: new Date(q.nextAttemptAt).toISOString() } : {}) };
      }),
    };
  });
}
