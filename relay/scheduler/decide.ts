// The scheduler's decision: for one group (a message's recipients at one provider), which source IP
// it leaves from now, or why and until when it waits. A pure function of the shaping state and the
// clock; relay/scheduler/shaper.ts holds the state and applies the decisions.
import type { MessageClass } from '../message-class.ts';
import { availableAt, type Bucket } from './bucket.ts';
import { otpReserve, type Limits } from './limits.ts';
import type { QuotaVerdict } from './quota.ts';

export interface PathState {
  /** Attempts in progress from this IP toward this provider, all classes / otp only. */
  active: number;
  activeOtp: number;
  bucket: Bucket | undefined;
}

export interface Suspension {
  until: number;
  reason: string;
}

export interface IpView {
  address: string;
  weight: number;
  limits: Limits;
  path: PathState;
  suspension: Suspension | undefined;
  /** Quarantined (no mail at all) or blocked toward this provider: by config or the relay's own reading of refusals. */
  block?: { kind: 'quarantined' | 'blocked'; until: number; reason: string } | undefined;
  quota: QuotaVerdict;
}

export interface DecideInput {
  now: number;
  cls: MessageClass;
  ips: readonly IpView[];
  /** Attempts in progress relay-wide, and how many of them are otp. */
  global: { active: number; activeOtp: number; concurrency: number };
  otpShare: number;
  /** A uniform random number in [0, 1) for the weighted choice. */
  random: number;
}

export type WaitReason = 'concurrency' | 'connections' | 'rate' | 'suspended' | 'quarantined' | 'blocked' | 'quota' | 'no-ip';
export type Decision =
  | { kind: 'send'; ip: string }
  /** `until` undefined: until an attempt in progress ends. */
  | { kind: 'wait'; until: number | undefined; reason: WaitReason; detail: string };

type Verdict = { ok: true } | { ok: false; until: number | undefined; reason: WaitReason; detail: string };

/** An IP that may send: one shared verdict (read, never changed), not one per IP per decision. */
const MAY_SEND: Verdict = { ok: true };

export function ipVerdict(ip: IpView, cls: MessageClass, now: number, otpShare: number): Verdict {
  // Reputation first: every class, otp included, leaves from a healthy IP or waits.
  if (ip.block) return { ok: false, until: ip.block.until, reason: ip.block.kind, detail: ip.block.reason };
  if (ip.suspension && ip.suspension.until > now) return { ok: false, until: ip.suspension.until, reason: 'suspended', detail: ip.suspension.reason };
  if (!ip.quota.ok) return { ok: false, until: ip.quota.until, reason: 'quota', detail: ip.quota.reason };
  const max = ip.limits.maxConnections;
  if (ip.path.active >= max) return { ok: false, until: undefined, reason: 'connections', detail: `${max} connections in use` };
  if (cls !== 'otp') {
    const reserve = otpReserve(max, otpShare);
    if (ip.path.active - ip.path.activeOtp >= max - reserve) {
      return { ok: false, until: undefined, reason: 'connections', detail: `${max - reserve} connections in use (${reserve} kept for otp)` };
    }
  }
  if (ip.path.bucket) {
    const at = availableAt(ip.path.bucket, now, ip.limits.messagesPerSecond, ip.limits.burst);
    if (at > now) return { ok: false, until: at, reason: 'rate', detail: `${ip.limits.messagesPerSecond} messages/s` };
  }
  return MAY_SEND;
}

export function decide(input: DecideInput): Decision {
  const { now, cls, global } = input;
  if (global.active >= global.concurrency) return { kind: 'wait', until: undefined, reason: 'concurrency', detail: 'delivery.concurrency reached' };
  if (cls !== 'otp' && global.active - global.activeOtp >= global.concurrency - otpReserve(global.concurrency, input.otpShare)) {
    return { kind: 'wait', until: undefined, reason: 'concurrency', detail: 'delivery.concurrency reached (share kept for otp)' };
  }
  // The IPs that may send: the first kept apart, a list only from the second on (most relays have one).
  let first: IpView | undefined;
  let ok: IpView[] | undefined;
  let best: Extract<Verdict, { ok: false }> | undefined;
  let candidates = 0;
  for (const ip of input.ips) {
    if (!(ip.weight > 0)) continue;
    candidates++;
    const v = ipVerdict(ip, cls, now, input.otpShare);
    if (v.ok) {
      if (first === undefined) first = ip;
      else (ok ??= [first]).push(ip);
    }
    // An IP that frees up on an event (a connection) may come sooner than any timed wait.
    else if (!best || (best.until !== undefined && (v.until === undefined || v.until < best.until))) best = v;
  }
  // Weights are the operator's to change (a drained IP): look again in a minute, from the queue.
  if (candidates === 0) return { kind: 'wait', until: now + 60_000, reason: 'no-ip', detail: 'no source IP with a weight above 0' };
  // One IP may send: the weighted choice below would pick it whatever the random number.
  if (first !== undefined && ok === undefined) return { kind: 'send', ip: first.address };
  if (ok !== undefined) {
    const total = ok.reduce((s, ip) => s + ip.weight, 0);
    let x = input.random * total;
    for (const ip of ok) {
      x -= ip.weight;
      if (x < 0) return { kind: 'send', ip: ip.address };
    }
    return { kind: 'send', ip: ok[ok.length - 1]!.address };
  }
  return { kind: 'wait', until: best!.until, reason: best!.reason, detail: best!.detail };
}
