// The SMTP listeners: smtp-server hooks that turn a session into a queued message, replying 250
// only after the queue has committed it to disk.
// Over 350 lines on purpose: one smtp-server instance per listener and its hooks (connect, auth, mail, rcpt,
// data) sharing the session state; each hook's decision is a pure module of its own beside it
// (recipient-policy, auth-throttle, intake-rate, data-scanner, slow-clients, class-header).
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession, type SMTPServerDataStream } from 'smtp-server';
import { isIP } from 'node:net';
import type { RelayConfig, ListenerConfig } from '../config/schema.ts';
import type { QueueStore } from '../queue/store.ts';
import { StoreError, domainOf, type NewMessage } from '../queue/types.ts';
import { newQueueId } from '../queue/id.ts';
import { childLogger, type Logger } from '../log.ts';
import type { RelayMetrics } from '../metrics.ts';
import { counterChild } from '../metric-children.ts';
import type { TlsFiles } from '../tls-files.ts';
import { bindError } from '../startup-error.ts';
import { watchSlowClients } from './slow-clients.ts';
import { IntakeMemoryBudget } from './memory-budget.ts';
import { IncomingBody, spoolDirOf } from './incoming-body.ts';
import type { DataSessionCount } from './data-sessions.ts';
import type { CredentialStore } from './credentials.ts';
import { AuthThrottle } from './auth-throttle.ts';
import { DataScanner } from './data-scanner.ts';
import { eachChunk } from './each-chunk.ts';
import { decideRecipient } from './recipient-policy.ts';
import { applySmtpServerPatches, smtpError, SESSION_COMMANDS_OFF } from './smtp-server-patches.ts';
import { buildReceivedHeader, extractMessageId, headerText } from './trace-headers.ts';
import { IntakeLimiter, type IntakeVerdict } from './intake-rate.ts';
import { HANDOFF_USER, refusesHandoff } from '../handoff/decide.ts';
import { DEFAULT_IP } from '../scheduler/shaper.ts';
import { readHandoffSecrets, secretMatches } from '../handoff/secret.ts';
import { CLASS_HEADER, takeClassHeader } from './class-header.ts';
import { classOfMessage, type MessageClass } from '../message-class.ts';
import { TAG_HEADER, takeTagHeaders } from '../events/tags.ts';
import type { Feedback } from '../feedback/feedback.ts';
import type { FeedbackConsumer } from '../bounce/mx-consumer.ts';

applySmtpServerPatches();

export interface IntakeDeps {
  config: RelayConfig;
  store: QueueStore;
  credentials: CredentialStore;
  logger: Logger;
  metrics: RelayMetrics;
  tls?: TlsFiles;
  clock?: () => number;
  /** Called after a message is durable, to wake delivery. */
  onQueued?: (id: string) => void;
  /**
   * Records the `accepted` events and the submitter's tags; the bounce MX hands what it parsed
   * (DSN, ARF) to recordFeedback (relay/feedback).
   */
  feedback?: Pick<Feedback, 'accepted' | 'recordFeedback'> | undefined;
  /** The bounce MX's consumer: mail to the MX role is handed to it, never queued (relay/bounce/mx-consumer.ts). */
  bounceMx?: FeedbackConsumer;
  /**
   * On a session thread (relay/intake/threads.ts): the port each listener binds, shared with the
   * other session threads through SO_REUSEPORT (the kernel spreads connections between them).
   */
  bind?: { port(listener: ListenerConfig): number; reusePort: true; clients: Int32Array };
  /**
   * The sessions of this thread in DATA, for the queue's commit delay (relay/queue/commit.ts);
   * absent (session threads), nothing is counted.
   */
  dataSessions?: DataSessionCount;
}

/**
 * smtp-server's connection set, counted in shared memory as well: maxClients is a limit per
 * listener, whichever thread took each connection (relay/intake/smtp-server-patches.ts reads total()).
 */
class SharedCountedSet<T> extends Set<T> {
  private readonly counts: Int32Array;
  private readonly slot: number;
  constructor(counts: Int32Array, slot: number) {
    super();
    this.counts = counts;
    this.slot = slot;
  }
  override add(v: T): this {
    if (!this.has(v)) Atomics.add(this.counts, this.slot, 1);
    return super.add(v);
  }
  override delete(v: T): boolean {
    const had = super.delete(v);
    if (had) Atomics.sub(this.counts, this.slot, 1);
    return had;
  }
  total(): number {
    return Atomics.load(this.counts, this.slot);
  }
}

/**
 * What the SMTP sessions of every thread share: the AUTH failure throttle, the intake rate
 * buckets and the memory budget. On the main thread, the objects themselves; on a session
 * thread, proxies that ask the main thread (the budget is shared memory), hence the promises.
 */
export interface IntakeShared {
  throttle: { blockedFor(address: string): number | Promise<number>; recordSuccess(address: string): void; recordFailure(address: string): void };
  limiter: { admit(user: string | undefined): IntakeVerdict | Promise<IntakeVerdict> };
  budget: IntakeMemoryBudget;
}

export function localIntakeShared(config: RelayConfig, clock?: () => number): { throttle: AuthThrottle; limiter: IntakeLimiter; budget: IntakeMemoryBudget } {
  return {
    throttle: new AuthThrottle(config.limits.authFailures.max, config.limits.authFailures.windowSeconds, clock),
    limiter: new IntakeLimiter(config.intakeRate, clock),
    budget: new IntakeMemoryBudget(config.limits.intakeMemoryBytes),
  };
}

/** Runs `then` with a value that may be a promise (a session thread's answer from the main thread) without a tick when it is not. */
function whenSettled<T>(v: T | Promise<T>, then: (v: T) => void, failed: (err: Error) => void): void {
  if (v instanceof Promise) v.then(then, failed);
  else then(v);
}

// Bounces quote at most the original's headers or a part of it (Postfix 50 kB, Exim 100 kB): an MX
// taking only bounces and complaints needs far less than submission.
const MX_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
export const maxMessageBytesOf = (listener: ListenerConfig, limits: RelayConfig['limits']): number =>
  listener.maxMessageBytes ?? (listener.role === 'mx' ? Math.min(MX_MAX_MESSAGE_BYTES, limits.maxMessageBytes) : limits.maxMessageBytes);

export interface RunningListener {
  name: string;
  address: string;
  port: number;
  /** The server, when its sessions run on this thread (absent for listeners on session threads). */
  server?: SMTPServer;
  close(): Promise<void>;
}

export function isLoopback(address: string): boolean {
  const a = address.replace(/^::ffff:/, '');
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/**
 * Starts the listeners `which` picks (all by default) with their sessions on this thread.
 * `shared`: the throttle, rate buckets and budget (the main thread's own, or a session thread's proxies).
 */
export async function startListeners(deps: IntakeDeps, shared: IntakeShared = localIntakeShared(deps.config, deps.clock), which: (l: ListenerConfig) => boolean = () => true): Promise<RunningListener[]> {
  const { config } = deps;
  const { throttle, limiter, budget } = shared;
  // prom-client reads it at scrape time (on a session thread the gauge is the main thread's).
  if (!deps.bind) Object.assign(deps.metrics.intakeHeldBytes, { collect: () => deps.metrics.intakeHeldBytes.set(budget.used) });
  const started: RunningListener[] = [];
  try {
    for (const listener of config.listeners) if (which(listener)) started.push(await startListener(listener, deps, throttle, limiter, budget));
  } catch (err) {
    await closeListeners(started);
    throw err;
  }
  deps.tls?.on('change', (material) => {
    for (const l of started) if (l.server?.options.key) l.server.updateSecureContext({ key: material.key, cert: material.cert });
    deps.logger.info({ fingerprint256: material.fingerprint256 }, 'TLS certificate reloaded');
  });
  return started;
}

export async function closeListeners(listeners: RunningListener[]): Promise<void> {
  await Promise.all(listeners.map((l) => l.close()));
}

/** Per-transaction state smtp-server does not keep: when the message may first be attempted. */
const notBefore = new WeakMap<SMTPServerSession, number>();

function startListener(listener: ListenerConfig, deps: IntakeDeps, throttle: IntakeShared['throttle'], limiter: IntakeShared['limiter'], budget: IntakeMemoryBudget): Promise<RunningListener> {
  const { config, logger, metrics } = deps;
  const log = childLogger(logger, { listener: listener.name });
  const tls = listener.tls !== 'none' ? deps.tls?.current : undefined;
  const greetingDelayMs = listener.greetingDelayMs ?? (listener.role === 'submission' ? 0 : 100);
  const reject = (stage: string, reason: string) => metrics.smtpRejections.inc({ listener: listener.name, stage, reason });
  // This listener's counters, looked up once (a session counts a connection and a message).
  const counted = {
    connection: counterChild(metrics.smtpConnections, { listener: listener.name }),
    accepted: counterChild(metrics.smtpMessages, { listener: listener.name, result: 'accepted' }),
    tempfail: counterChild(metrics.smtpMessages, { listener: listener.name, result: 'tempfail' }),
    rejected: counterChild(metrics.smtpMessages, { listener: listener.name, result: 'rejected' }),
  };

  /** MAIL FROM's intake-rate verdict (relay/intake/intake-rate.ts) answered. */
  const admitted = (v: IntakeVerdict, session: SMTPServerSession, callback: (err?: Error | null) => void) => {
    if (!v.ok) {
      reject('mail', 'rate-limited');
      metrics.intakeThrottled.inc({ listener: listener.name, scope: v.scope, action: 'tempfail' });
      return callback(smtpError(451, '4.7.1', `Message rate limit exceeded (${v.scope === 'pool' ? 'relay' : 'this account'}); try again in ${v.retryAfterSeconds} seconds`));
    }
    if (v.notBefore !== undefined) {
      metrics.intakeThrottled.inc({ listener: listener.name, scope: v.scope ?? 'pool', action: 'queued' });
      notBefore.set(session, v.notBefore);
    } else notBefore.delete(session);
    callback();
  };
  const admitFailed = (err: Error, callback: (err?: Error | null) => void) => {
    log.error({ err }, 'intake rate check failed');
    callback(smtpError(451, '4.3.0', 'Temporary failure; try again later'));
  };

  const authAllowed = (session: SMTPServerSession, secure: boolean) =>
    listener.role === 'submission' && (secure || (listener.allowPlaintextAuthOnLoopback && isLoopback(session.remoteAddress)));

  const options: SMTPServerOptions & { greetingDelayMs: number } = {
    name: config.hostname,
    banner: 'mailfleet ESMTP',
    greetingDelayMs,
    secure: listener.tls === 'implicit',
    ...(tls ? { key: tls.key, cert: tls.cert } : {}),
    hideSTARTTLS: listener.tls !== 'starttls',
    disabledCommands: listener.tls === 'none' ? ['STARTTLS'] : [],
    authMethods: ['PLAIN', 'LOGIN'],
    hideENHANCEDSTATUSCODES: false,
    hidePIPELINING: false,
    hide8BITMIME: false,
    hideSMTPUTF8: false,
    // Relaying is decided per recipient in onRcptTo, with the reply RFC 3463 asks for.
    authOptional: true,
    allowInsecureAuth: listener.allowPlaintextAuthOnLoopback,
    size: maxMessageBytesOf(listener, config.limits),
    maxClients: listener.maxClients,
    socketTimeout: config.limits.idleTimeoutMs,
    disableReverseLookup: true,
    logger: false,
    onConnect(session, callback) {
      counted.connection.inc();
      // A draining relay takes no new mail (its IP is leaving the pool) and keeps delivering what
      // it holds. 421 at the greeting: the client tries another relay of the pool, or later.
      if (config.draining) {
        reject('connect', 'draining');
        return callback(smtpError(421, '4.3.2', `${config.hostname} is draining and not accepting new mail; try another relay of the pool`));
      }
      // AUTH is not even advertised where it may not be used: plaintext from a remote address.
      if (!authAllowed(session, listener.tls === 'implicit')) session.disabledCommands = (listener.tls === 'starttls' ? SESSION_COMMANDS_OFF.auth : SESSION_COMMANDS_OFF.authAndStarttls) as string[];
      // limits.sessionTimeoutMs is enforced by the slow-client sweep below (no timer per session).
      callback();
    },
    onSecure(_socket, session, callback) {
      if (authAllowed(session, true)) session.disabledCommands = SESSION_COMMANDS_OFF.none as string[];
      callback();
    },
    onAuth(auth, session, callback) {
      const address = session.remoteAddress;
      whenSettled(throttle.blockedFor(address), (wait) => {
        if (wait > 0) {
          reject('auth', 'throttled');
          return callback(smtpError(454, '4.7.0', `Too many failed authentication attempts; try again in ${wait} seconds`));
        }
        const password = auth.password ?? '';
        // A peer relay handing off a quarantined relay's mail proves the pool's shared secret, not
        // a credential of the file (relay/handoff/secret.ts); without the secret file the user does
        // not exist. A relay leaving the Service for its own quarantine turns hand-offs away.
        if (auth.username === HANDOFF_USER && refusesHandoff(deps.config.shaping, deps.config.delivery.egressIps, DEFAULT_IP)) {
          return callback(smtpError(454, '4.7.0', 'This relay\'s sources are quarantined: hand off to another relay of the pool'));
        }
        // No secret here (yet): the pool's relays apply a new config a few seconds apart, so a
        // peer may hand off before this relay has the file. A temporary refusal that is not a
        // failed login: counted, it would block the peer's address for the throttle's window.
        const notYet = Symbol('no hand-off secret');
        const check: Promise<boolean | typeof notYet> = auth.username === HANDOFF_USER
          ? readHandoffSecrets(deps.config.handoff.secretFile).then((secrets) => (secrets.length === 0 ? notYet : secretMatches(password, secrets)))
          : deps.credentials.verify(auth.username ?? '', password);
        check.then(
          (ok) => {
            if (ok === notYet) return callback(smtpError(454, '4.7.0', 'This relay takes no hand-offs now (no hand-off secret configured); try another relay or later'));
            if (ok) {
              throttle.recordSuccess(address);
              return callback(null, { user: auth.username });
            }
            throttle.recordFailure(address);
            metrics.authFailures.inc({ listener: listener.name });
            log.warn({ client: address, user: auth.username }, 'authentication failed');
            callback(smtpError(535, '5.7.8', 'Authentication credentials invalid'));
          },
          (err: Error) => {
            log.error({ err }, 'credential check failed');
            callback(smtpError(454, '4.7.0', 'Temporary authentication failure'));
          },
        );
      }, (err) => {
        log.error({ err }, 'authentication throttle unavailable');
        callback(smtpError(454, '4.7.0', 'Temporary authentication failure'));
      });
    },
    onMailFrom(address, session, callback) {
      if (address.address && !/^[^@\s]+@[^@\s]+$/.test(address.address)) {
        reject('mail', 'bad-sender');
        return callback(smtpError(553, '5.1.7', `Sender address <${address.address}> is not a valid mailbox`));
      }
      // Bounces arriving on the MX role are not the pool's sending traffic.
      if (listener.role !== 'submission') return callback();
      // A hand-off was admitted once already, at the pool's intake, by the relay that hands it off.
      if (session.user === HANDOFF_USER) return callback();
      // The main thread's answer is at hand: no closures for it (a session thread's is a promise).
      const verdict = limiter.admit(typeof session.user === 'string' ? session.user : undefined);
      if (verdict instanceof Promise) verdict.then((v) => admitted(v, session, callback), (err: Error) => admitFailed(err, callback));
      else admitted(verdict, session, callback);
    },
    onRcptTo(address, session, callback) {
      // The MX role: bounce and feedback addresses are decided by the consumer, before the syntax
      // check, so a quoted local part with "@" gets its 5.7.1 (it is never a relay either way).
      const bounce = listener.role === 'mx' ? deps.bounceMx?.decide(address.address) : undefined;
      if (bounce && bounce.ok === false) {
        reject('rcpt', bounce.reason);
        return callback(smtpError(bounce.code, bounce.enhanced, bounce.text));
      }
      if (bounce?.ok === true) {
        if (session.envelope.rcptTo.length >= config.limits.maxRecipients) return callback(smtpError(452, '4.5.3', `Too many recipients: at most ${config.limits.maxRecipients} per message`));
        return callback();
      }
      if (!/^[^@\s]+@[^@\s]+$/.test(address.address)) {
        reject('rcpt', 'bad-recipient');
        return callback(smtpError(553, '5.1.3', `Recipient address <${address.address}> is not a valid mailbox`));
      }
      const decision = decideRecipient({
        role: listener.role,
        authenticated: Boolean(session.user),
        recipientDomain: domainOf(address.address),
        // On the MX role every accepted domain is a bounce domain, decided above: nothing is relayed.
        acceptDomains: listener.role === 'mx' ? NO_DOMAINS : config.acceptDomains,
        recipientsSoFar: session.envelope.rcptTo.length,
        maxRecipients: config.limits.maxRecipients,
      });
      if (!decision.ok) {
        reject('rcpt', decision.reason);
        return callback(smtpError(decision.code, decision.enhanced, decision.text));
      }
      callback();
    },
    onData(stream, session, callback) {
      receiveMessage(stream, session, listener, deps, log, budget).then(
        (id) => {
          counted.accepted.inc();
          // The MX role records reports, it queues nothing.
          callback(null, listener.role === 'mx' ? `Ok: recorded as ${id}` : `Ok: queued as ${id}`);
        },
        (err: Error & { responseCode?: number; reason?: string }) => {
          const tempfail = (err.responseCode ?? 450) < 500;
          (tempfail ? counted.tempfail : counted.rejected).inc();
          if (err.reason) reject('data', err.reason);
          callback(err);
        },
      );
    },
  };

  const server = new SMTPServer(options);
  if (deps.bind) server.connections = new SharedCountedSet(deps.bind.clients, config.listeners.indexOf(listener));
  const stopWatching = watchSlowClients(server, { commandTimeoutMs: config.limits.commandTimeoutMs, minDataRate: config.limits.minDataRate, sessionTimeoutMs: config.limits.sessionTimeoutMs }, (phase, sessionId) => {
    metrics.slowClients.inc({ listener: listener.name, phase });
    log.warn({ session: sessionId, phase }, phase === 'command' ? 'command line not finished in time; closing' : 'message data too slow; closing');
  });
  server.on('close', stopWatching);
  server.on('error', (err) => log.warn({ err: (err as Error).message }, 'SMTP connection error'));
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => {
      const i = deps.config.listeners.indexOf(listener);
      reject(bindError(err, { what: `SMTP listener "${listener.name}"`, address: listener.address, port: listener.port,
        portHint: `change listeners[${i}].port in the relay config or stop the process holding it` }));
    };
    server.server.once('error', failed);
    const bind = deps.bind ? { port: deps.bind.port(listener), host: listener.address, reusePort: true } : { port: listener.port, host: listener.address };
    server.listen(bind, () => {
      server.server.off('error', failed);
      const addr = server.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : listener.port;
      log.info({ address: listener.address, port, role: listener.role, tls: listener.tls, greetingDelayMs }, 'SMTP listener ready');
      resolve({ name: listener.name, address: listener.address, port, server, close: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}

const noop = (): void => {};
const NO_TAGS: readonly string[] = Object.freeze([]);
const NO_DOMAINS: readonly string[] = Object.freeze([]);

/** The spool directory, joined once per data directory (path.join per message was ~4 µs). */
let spoolDir = { dataDir: '', path: '' };
function spoolDirFor(dataDir: string): string {
  if (spoolDir.dataDir !== dataDir) spoolDir = { dataDir, path: spoolDirOf(dataDir) };
  return spoolDir.path;
}

async function receiveMessage(
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  listener: ListenerConfig,
  deps: IntakeDeps,
  log: Logger,
  budget: IntakeMemoryBudget,
): Promise<string> {
  // In DATA until the message is handed to the queue (a commit waiting for this session then
  // takes it), or refused, or the session died: whichever comes first, once.
  const leaveData = deps.dataSessions?.enter() ?? noop;
  // Every byte held for this message is reserved from the intake budget and given back when the
  // message is queued or refused, whatever happens in between; a spool file is closed with it.
  // One async function for the whole message (an inner one cost a promise and a tick a message).
  const body = new IncomingBody(budget, spoolDirFor(deps.config.dataDir));
  try {
    const { config } = deps;
    const scanner = new DataScanner(config.limits.maxLineOctets);
    const maxBytes = maxMessageBytesOf(listener, config.limits);
    let spoolFailed: Error | undefined;
    await eachChunk(stream, (chunk) => {
      scanner.push(chunk);
      // Past the size limit (or a failed spool write), keep reading (the client is still sending)
      // but hold nothing: what was held goes at once, an oversized body is never kept whole.
      if (!body.dropped && body.bytes + chunk.length > maxBytes) body.drop();
      return body.add(chunk)?.catch((err: Error) => {
        spoolFailed = err;
        body.drop();
      });
    });
    if (stream.sizeExceeded) {
      // smtp-server itself answers 552 5.3.4 for an oversized message; this only keeps it out of the queue.
      throw Object.assign(smtpError(552, '5.3.4', `Message size exceeds the limit of ${maxBytes} bytes`), { reason: 'too-big' });
    }
    if (spoolFailed) {
      log.error({ err: spoolFailed.message, client: session.remoteAddress, size: body.bytes }, 'intake spool write failed; message not accepted');
      throw Object.assign(smtpError(452, '4.3.1', 'Insufficient system storage: message not queued, try again later'), { reason: 'spool-write-failed' });
    }
    const verdict = scanner.finish();
    if (!verdict.ok) {
      log.warn({ client: session.remoteAddress, reason: verdict.reason }, 'message refused');
      throw Object.assign(smtpError(verdict.code, verdict.enhanced, verdict.text), { reason: verdict.reason });
    }
    const now = (deps.clock ?? Date.now)();
    const id = newQueueId(now);
    if (listener.role === 'mx') {
      // The copy handed to the consumer is held too, like the queue's copy below.
      return await consumeReport(body.inMemory('') ?? await wholeBody(body, '', deps, session, log), id, session, deps, log);
    }
    const received = buildReceivedHeader({
      id,
      heloName: session.hostNameAppearsAs,
      clientAddress: session.remoteAddress,
      byName: config.hostname,
      secure: session.secure,
      authenticated: Boolean(session.user),
      date: now,
    });
    // A spooled body stays in its file: only its header section is read back and rewritten here, and
    // the commit stores it in parts from the file (relay/queue/body-parts.ts). Otherwise one copy of
    // the data, trace header first, written straight into it; a second only when the class header
    // must come out. The copy is held too (relay/intake/incoming-body.ts). A body in memory (up to
    // 128 KiB, nearly all mail) is taken without a promise.
    const spooled = body.onDisk ? await spooledBody(body, session, log) : undefined;
    const whole = spooled ? Buffer.concat([Buffer.from(received), spooled.head]) : body.inMemory(received) ?? await wholeBody(body, received, deps, session, log);
    // The trace header's bytes: what the copy holds beyond the data (every byte received is in it).
    const receivedBytes = whole.length - (spooled ? spooled.head.length : body.bytes);
    const original = whole.subarray(receivedBytes);
    const user = typeof session.user === 'string' ? session.user : undefined;
    const { data, cls, tags, messageId } = readHeaderSection(original, user, deps);
    const size = data.length + (spooled?.length ?? 0);
    const stored = data === original ? whole : Buffer.concat([whole.subarray(0, receivedBytes), data]);
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    // One list for the queue and the accepted events (neither changes it).
    const recipients = session.envelope.rcptTo.map((r) => r.address);
    const message: NewMessage = {
      id,
      mailFrom,
      recipients,
      body: spooled ? { head: stored, fd: spooled.fd, offset: spooled.offset, length: spooled.length } : stored,
      clientAddress: session.remoteAddress,
      authUser: user,
      listener: listener.name,
      messageId,
      class: cls,
    };
    const notBeforeAt = notBefore.get(session);
    if (notBeforeAt !== undefined) message.notBefore = notBeforeAt;
    // Left just before enqueue(): a commit released by this leaving writes this message too.
    leaveData();
    try {
      await deps.store.enqueue(message);
    } catch (err) {
      if (err instanceof StoreError) {
        log.error({ err: err.message, code: err.sqliteCode }, 'queue write failed; message not accepted');
        throw Object.assign(smtpError(452, '4.3.1', 'Insufficient system storage: message not queued, try again later'), { reason: 'queue-write-failed' });
      }
      throw err;
    }
    try {
      deps.feedback?.accepted({ queueId: id, messageId, recipients, mailFrom, body: data, class: cls, tags: user !== undefined ? tags : NO_TAGS });
    } catch (err) {
      log.error({ err, id }, 'accepted event not recorded');
    }
    deps.metrics.receivedBytes.inc(size);
    if (log.isLevelEnabled('info')) log.info({ id, client: session.remoteAddress, user: session.user, from: session.envelope.mailFrom || null, rcpts: session.envelope.rcptTo.length, size }, 'queued');
    deps.onQueued?.(id);
    return id;
  } finally {
    leaveData();
    const closing = body.release();
    if (closing) await closing;
  }
}

/** Names either header the intake takes out (case-insensitive), without a lower-cased copy of the section. */
const OUR_HEADERS = new RegExp(`${CLASS_HEADER}|${TAG_HEADER}`, 'i');

/**
 * What the intake reads from the header section: the class and tags (their fields taken out of the
 * data) and the Message-ID. A function of its own so the decoded text dies young, not kept by
 * receiveMessage's frame while it waits for the commit (~ms: a scavenge then promotes it).
 */
function readHeaderSection(original: Buffer, user: string | undefined, deps: IntakeDeps): { data: Buffer; cls: MessageClass; tags: readonly string[]; messageId: string | undefined } {
  // The header section is decoded once: the class and tag readers (which decode it again) run
  // only when it names their header, and the Message-ID is read from the same text.
  const head = headerText(original);
  const ours = !head.whole || OUR_HEADERS.test(head.text);
  // The class header is always removed; it is honoured only from authenticated submission.
  const { body: classless, class: headerClass } = ours ? takeClassHeader(original) : { body: original, class: undefined };
  // Tags too are always removed, and honoured only from authenticated submission.
  const { body: data, tags } = ours ? takeTagHeaders(classless) : { body: classless, tags: NO_TAGS };
  const cls = classOfMessage({ authenticated: user !== undefined, header: headerClass, credentialDefault: user !== undefined ? deps.credentials.classOf(user) : undefined });
  // Read before the commit: on a session thread a large body goes to the main thread by transfer
  // (relay/intake/session-thread.ts) and this thread's view of it is empty afterwards.
  const messageId = data === original ? extractMessageId(data, head.text) : extractMessageId(data);
  return { data, cls, tags, messageId };
}

/** A spooled body's header section and where the rest is (IncomingBody.spooled), or undefined: read it whole. */
async function spooledBody(body: IncomingBody, session: SMTPServerSession, log: Logger): ReturnType<IncomingBody['spooled']> {
  try {
    return await body.spooled();
  } catch (err) {
    log.error({ err: (err as Error).message, client: session.remoteAddress, size: body.bytes }, 'intake spool read failed; message not accepted');
    throw Object.assign(smtpError(452, '4.3.1', 'Insufficient system storage: message not queued, try again later'), { reason: 'spool-read-failed' });
  }
}

/** The message in one Buffer for the commit, or 451 4.3.1 when memory for it did not come in time. */
async function wholeBody(body: IncomingBody, prefix: string, deps: IntakeDeps, session: SMTPServerSession, log: Logger): Promise<Buffer> {
  let whole: Buffer | false;
  try {
    whole = await body.withPrefix(prefix, deps.config.limits.intakeMemoryWaitMs);
  } catch (err) {
    log.error({ err: (err as Error).message, client: session.remoteAddress, size: body.bytes }, 'intake spool read failed; message not accepted');
    throw Object.assign(smtpError(452, '4.3.1', 'Insufficient system storage: message not queued, try again later'), { reason: 'spool-read-failed' });
  }
  if (whole === false) {
    log.warn({ client: session.remoteAddress, size: body.bytes, budget: deps.config.limits.intakeMemoryBytes, waitedMs: deps.config.limits.intakeMemoryWaitMs }, 'intake memory budget full; message not accepted');
    throw Object.assign(smtpError(451, '4.3.1', 'Insufficient system resources: too much mail arriving at once, try again later'), { reason: 'memory-budget' });
  }
  return whole;
}

/** The MX role: the report is parsed and handed over (durably recorded) instead of queued. */
async function consumeReport(data: Buffer, id: string, session: SMTPServerSession, deps: IntakeDeps, log: Logger): Promise<string> {
  if (!deps.bounceMx) throw Object.assign(smtpError(451, '4.3.0', 'Bounce processing is not running; try again later'), { reason: 'no-consumer' });
  try {
    await deps.bounceMx.consume(data, {
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
      clientAddress: session.remoteAddress,
    });
  } catch (err) {
    log.error({ err, id }, 'report could not be recorded; not accepted');
    throw Object.assign(smtpError(451, '4.3.0', 'Report not recorded: try again later'), { reason: 'feedback-write-failed' });
  }
  deps.metrics.receivedBytes.inc(data.length);
  return id;
}
