// One delivery attempt for one group (a message's recipients at one destination domain): route,
// MTA-STS, MX hosts in order, addresses, connection from the pool, one transaction. Returns one
// outcome per recipient; never throws for remote trouble.
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { SmtpPhase } from '../bounce/classify.ts';
import { parseReplyLine } from '../bounce/classify.ts';
import { DnsFailure, type MailResolver } from '../dns/resolver.ts';
import type { EgressIp } from './egress.ts';
import { mxMatchesPolicy, type MtaStsCache } from './mta-sts.ts';
import type { Budget, ConnectionPool } from './pool.ts';
import { SmtpError, type OpenOptions, type TlsMode, type TransactionResult } from './smtp-client.ts';
import { classifyAddress, type AddressClass } from './address-policy.ts';
import type { Outgoing } from './large-message.ts';

export interface RecipientOutcome {
  recipient: string;
  code: number;
  enhanced?: string | undefined;
  text: string;
  /** The reply as received (or the relay's own reply-like description of a local failure). */
  raw: string;
  phase: SmtpPhase;
  /** MX host that gave the reply, when one did. */
  mx?: string | undefined;
  tls?: boolean;
  /** The MX certificate verified for its name (what MTA-STS testing mode reports on). */
  tlsVerified?: boolean;
  /** MTA-STS policy mode applied, when the domain has one. */
  mtaSts?: 'enforce' | 'testing' | 'none';
}

export interface AttemptContext {
  resolver: MailResolver;
  pool: ConnectionPool;
  mtaSts: MtaStsCache | undefined;
  routes: readonly { host: string; port: number }[] | undefined;
  mxPort: number;
  ehloName: string;
  egress: EgressIp | undefined;
  tlsCa?: string | Buffer | undefined;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Contact MX hosts on loopback/private addresses (labs, tests); routes are never filtered. */
  allowPrivateMx?: boolean;
  /** The scheduler's per (source IP, provider) connection limits. */
  budget?: Budget | undefined;
  /** TLS toward a route's host (default opportunistic); MX hosts follow MTA-STS. */
  routeTls?: TlsMode | undefined;
  /** AUTH PLAIN at the route's host (a hand-off to a peer relay). */
  auth?: { user: string; pass: string } | undefined;
}

function all(recipients: string[], o: Omit<RecipientOutcome, 'recipient'>): RecipientOutcome[] {
  return recipients.map((recipient) => ({ recipient, ...o }));
}

/** A local or connection-level failure, phrased as an SMTP reply so it reads the same in logs and DSNs. */
function synthetic(code: number, enhanced: string, text: string, phase: SmtpPhase, mx?: string): Omit<RecipientOutcome, 'recipient'> {
  return { code, enhanced, text, raw: `${code} ${enhanced} ${text}`, phase, mx };
}

function fromSmtpError(e: SmtpError, mx: string): Omit<RecipientOutcome, 'recipient'> {
  // A 5xx greeting or EHLO refusal says "not from you, not now" about the session, not the
  // recipient: like Postfix (smtp_skip_5xx_greeting) we defer, keeping the reply for the classifier.
  if (e.code >= 500 && (e.phase === 'connect' || e.phase === 'ehlo')) {
    return synthetic(451, '4.4.1', `${mx} refused the session: ${e.raw}`, e.phase, mx);
  }
  if (e.code > 0) {
    const p = parseReplyLine(e.raw);
    return { code: e.code, enhanced: p.enhanced, text: p.text, raw: e.raw, phase: e.phase, mx };
  }
  const enhanced = e.phase === 'tls' ? '4.7.5' : '4.4.1';
  return synthetic(451, enhanced, e.raw, e.phase, mx);
}

/**
 * A configured route's host is an operator's name (often "localhost" or a Kubernetes Service), so it
 * is resolved the way the system resolves names (getaddrinfo: /etc/hosts, search domains), not via MX DNS.
 */
async function smarthostAddresses(host: string): Promise<string[]> {
  return (await lookup(host, { all: true })).map((a) => a.address);
}

/** The outcome of one recipient from its reply in the transaction. */
function outcomeOf(r: TransactionResult['recipients'][number], mx: string, tls: boolean, tlsVerified: boolean, stsMode: RecipientOutcome['mtaSts']): RecipientOutcome {
  const text = r.reply.text;
  // A one-line reply as received ("250 2.0.0 Ok") is already the line parsed here: not built again.
  const raw = r.reply.raw;
  const line = raw.length === text.length + 4 && raw.charCodeAt(3) === 0x20 && raw.startsWith(String(r.reply.code)) && raw.endsWith(text)
    ? raw
    : `${r.reply.code} ${text.includes('\n') ? text.split('\n').join(' ') : text}`;
  const p = parseReplyLine(line);
  const o: RecipientOutcome = {
    recipient: r.recipient, code: r.reply.code, enhanced: p.enhanced, text: p.text, raw, phase: r.phase,
    mx, tls, tlsVerified,
  };
  if (stsMode) o.mtaSts = stsMode;
  return o;
}

/**
 * The options of a connection to one address of one host, per attempt context (built once per
 * path in send.ts): the same object each time, so the pool finds its key without building it.
 * Bounded: MX delivery meets many hosts; past OPTIONS_MAX the memo starts again.
 */
const OPTIONS_MAX = 1000;
const optionsMemo = new WeakMap<AttemptContext, { size: number; byHost: Map<string, Map<string, OpenOptions>> }>();

function openOptions(ctx: AttemptContext, host: string, address: string, port: number, tls: TlsMode): OpenOptions {
  let memo = optionsMemo.get(ctx);
  if (!memo || memo.size >= OPTIONS_MAX) optionsMemo.set(ctx, (memo = { size: 0, byHost: new Map() }));
  let byAddress = memo.byHost.get(host);
  if (!byAddress) memo.byHost.set(host, (byAddress = new Map()));
  const o = byAddress.get(address);
  if (o && o.port === port && o.tls === tls) return o;
  const made: OpenOptions = {
    host,
    address,
    port,
    localAddress: ctx.egress?.address,
    ehloName: ctx.ehloName,
    tls,
    ca: ctx.tlsCa,
    connectTimeoutMs: ctx.connectTimeoutMs,
    commandTimeoutMs: ctx.commandTimeoutMs,
    signal: ctx.signal,
    auth: ctx.auth,
  };
  if (!o) memo.size++;
  byAddress.set(address, made);
  return made;
}

/** A route host that is an IP address is its own (only) address: one array per host, not per attempt. */
const literalAddresses = new Map<string, readonly string[]>();

function addressesOfLiteral(host: string): readonly string[] | undefined {
  let a = literalAddresses.get(host);
  if (a === undefined) {
    if (!net.isIP(host)) return undefined;
    if (literalAddresses.size >= OPTIONS_MAX) literalAddresses.clear();
    literalAddresses.set(host, (a = [host]));
  }
  return a;
}

export async function attemptDelivery(
  ctx: AttemptContext,
  domain: string,
  mailFrom: string,
  recipients: string[],
  body: Outgoing,
): Promise<RecipientOutcome[]> {
  let targets: readonly { host: string; port: number }[];
  let tlsMode: TlsMode = 'opportunistic';
  let stsMode: 'enforce' | 'testing' | 'none' | undefined;
  if (ctx.routes) {
    // Read, never changed: the routes themselves serve (no copy per attempt).
    targets = ctx.routes;
    tlsMode = ctx.routeTls ?? tlsMode;
  } else {
    try {
      const route = await ctx.resolver.route(domain);
      targets = route.hosts.map((host) => ({ host, port: ctx.mxPort }));
    } catch (err) {
      if (err instanceof DnsFailure) return all(recipients, synthetic(err.permanent ? 550 : 451, err.enhanced, err.message, 'dns'));
      throw err;
    }
    const policy = ctx.mtaSts ? await ctx.mtaSts.policyFor(domain) : undefined;
    stsMode = policy?.mode;
    if (policy?.mode === 'enforce') {
      tlsMode = 'verify';
      targets = targets.filter((t) => mxMatchesPolicy(t.host, policy.mx));
      if (targets.length === 0) {
        return all(recipients, synthetic(451, '4.7.5', `no MX host of ${domain} is listed in its MTA-STS policy (enforce)`, 'tls'));
      }
    }
  }

  // What the recipients get when no host took the mail; built only then (not per delivered message).
  let last: Omit<RecipientOutcome, 'recipient'> | undefined;
  const refused: AddressClass[] = [];
  let contacted = false;
  // Indexed loops: no iterator objects while the attempt runs unoptimised.
  for (let ti = 0; ti < targets.length; ti++) {
    const t = targets[ti]!;
    let addresses: readonly string[];
    try {
      // A route to an IP address needs no lookup (and no promise).
      addresses = ctx.routes ? (addressesOfLiteral(t.host) ?? await smarthostAddresses(t.host)) : await ctx.resolver.addresses(t.host);
    } catch (err) {
      if (err instanceof DnsFailure) last = synthetic(451, '4.4.3', err.message, 'dns', t.host);
      else last = synthetic(451, '4.4.3', `cannot resolve route host ${t.host}: ${(err as Error).message}`, 'dns', t.host);
      continue;
    }
    if (addresses.length === 0) last = synthetic(451, '4.4.3', `MX host ${t.host} has no address`, 'dns', t.host);
    for (let ai = 0; ai < addresses.length; ai++) {
      const address = addresses[ai]!;
      // A socket bound to an IPv4 source cannot reach an IPv6 destination (and the reverse).
      if (ctx.egress && net.isIPv6(address) !== net.isIPv6(ctx.egress.address)) continue;
      if (!ctx.routes && !ctx.allowPrivateMx) {
        const cls = classifyAddress(address);
        if (cls !== 'public') {
          refused.push(cls);
          continue;
        }
      }
      contacted = true;
      let mode: TlsMode = tlsMode;
      for (let tries = 0; tries < 3; tries++) {
        const opts = openOptions(ctx, t.host, address, t.port, mode);
        // A parked connection is taken without a promise; a new one is opened (and waited for) otherwise.
        let conn = ctx.pool.takeIdle(opts, ctx.budget);
        if (!conn) try {
          conn = await ctx.pool.acquire(opts, ctx.budget);
        } catch (err) {
          if (!(err instanceof SmtpError)) throw err;
          last = fromSmtpError(err, t.host);
          if (ctx.signal?.aborted) return all(recipients, last);
          // Opportunistic TLS that fails its handshake falls back to plaintext (RFC 7435), once.
          if (err.phase === 'tls' && mode === 'opportunistic') {
            mode = 'none';
            continue;
          }
          break;
        }
        const reused = conn.messagesSent > 0;
        try {
          const result = await conn.send(mailFrom, recipients, body);
          ctx.pool.release(opts, conn, ctx.budget);
          const out: RecipientOutcome[] = [];
          const rs = result.recipients;
          for (let k = 0; k < rs.length; k++) out.push(outcomeOf(rs[k]!, t.host, conn.tlsActive, conn.tlsAuthorized, stsMode));
          return out;
        } catch (err) {
          ctx.pool.release(opts, conn, ctx.budget);
          if (!(err instanceof SmtpError)) throw err;
          last = fromSmtpError(err, t.host);
          if (ctx.signal?.aborted) return all(recipients, last);
          // A parked connection the server had already dropped: try a fresh one to the same host.
          if (reused) continue;
          break;
        }
      }
    }
  }
  if (!contacted && refused.length > 0) {
    // An MX on loopback is the pre-RFC 7505 way of saying "no mail here" (Postfix: "loops back to myself").
    if (refused.every((c) => c === 'loopback')) {
      return all(recipients, synthetic(550, '5.4.6', `MX of ${domain} points to a loopback address: treated as no mail service`, 'dns'));
    }
    return all(recipients, synthetic(451, '4.4.1', `MX of ${domain} resolves only to private addresses, which this relay does not contact (delivery.allowPrivateMx)`, 'dns'));
  }
  return all(recipients, last ?? synthetic(451, '4.4.1', `no usable host for ${domain}`, 'connect'));
}
