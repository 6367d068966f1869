// status.ips[].state and .relayPod of one IP: the one place that decides them (docs/reputation.md
// "States"). Pure. Several loops write facts into an IP's status — the reputation round its
// quarantine record, the stats reader its warm-up decision, this controller what the cache says of
// the relay — and only the SendingPool controller turns those facts into `state`, through this
// function. Before, the reputation round wrote `Quarantined` and the controller's next write said
// `Pending` while the relay was not Ready (a quarantined relay fails /readyz on purpose), so the
// state flipped between the two writers for as long as the quarantine lasted.
//
// Precedence, first match wins, and why:
//   Conflict     another pool claimed the address first: nothing is rendered for it here, so no
//                other fact about it is this pool's to report.
//   Draining     the IP left the spec (or the pool is being deleted): what matters is the count left
//                before its StatefulSet goes; a quarantine record stays visible beside it.
//   Quarantined  a verdict on the IP's reputation that a person has to act on (delisting): shown
//                whatever its relay pod does. relayPod says that part (a quarantined relay leaves the
//                Service on purpose, so NotReady there is expected: OutOfService).
//   Pending      the relay pod is not Ready (or not created): nothing is sent from the IP.
//   Paused       carried from an earlier writer (the health loop); only while the relay is Ready.
//   WarmingUp    Ready, and the warm-up plan caps the IP today.
//   Ready        Ready, no cap.
import type { PoolIpStatus } from '../../api/index.ts';

export type IpState = PoolIpStatus['state'];
export type RelayPod = NonNullable<PoolIpStatus['relayPod']>;

export interface IpStateInput {
  /** Another pool claims the address (it came first). */
  conflict: boolean;
  /** Not served any more: its relay delivers what it holds, then goes. */
  draining: boolean;
  /** status.ips[].quarantine is present (the reputation round's record). */
  quarantined: boolean;
  /**
   * The IP's relay config has quarantineLeavesService (operator/reputation/status.ts): its relay
   * fails /readyz on purpose and leaves the pool's Service.
   */
  leavesService: boolean;
  /** What the cache says of the IP's StatefulSet. */
  relay: { exists: boolean; ready: boolean };
  /** The previous state was Paused (kept while the relay is Ready). */
  paused: boolean;
  /** The warm-up plan caps the IP today. */
  warming: boolean;
}

/** The relay pod as Kubernetes sees it, with the one expected not-Ready case named. */
export function relayPodState(i: Pick<IpStateInput, 'quarantined' | 'leavesService' | 'relay'>): RelayPod {
  if (!i.relay.exists) return 'NotCreated';
  if (i.relay.ready) return 'Ready';
  return i.quarantined && i.leavesService ? 'OutOfService' : 'NotReady';
}

/** The IP's state by the precedence above. */
export function ipState(i: IpStateInput): IpState {
  if (i.conflict) return 'Conflict';
  if (i.draining) return 'Draining';
  if (i.quarantined) return 'Quarantined';
  if (!i.relay.ready) return 'Pending';
  if (i.paused) return 'Paused';
  return i.warming ? 'WarmingUp' : 'Ready';
}

const POD_WORDS: Record<RelayPod, string> = {
  Ready: 'relay pod Ready',
  NotReady: 'relay pod not ready',
  OutOfService: 'its relay has left the Service on purpose (fails /readyz): new mail goes to the pool\'s other relays',
  NotCreated: 'StatefulSet not created yet',
};

/** status.ips[].message for a served IP (Conflict and Draining write their own); undefined when nothing to say. */
export function ipStateMessage(state: IpState, pod: RelayPod, quarantine: { message: string } | undefined): string | undefined {
  if (state === 'Quarantined') return `quarantined: ${quarantine?.message ?? 'by the reputation loop'}; ${POD_WORDS[pod]}`.slice(0, 1024);
  if (pod === 'Ready') return undefined;
  return POD_WORDS[pod];
}
