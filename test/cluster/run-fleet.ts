// `npm run fleet`: the test cluster (two nodes) with the chart installed and examples/ applied, for
// trying mailfleet by hand. A sink MX on the node's host end prints every message it receives.
// Ctrl-C stops everything (nothing is left running). Needs root; see docs/test-node.md.
import { startMailFleet, applyExamples } from './fleet.ts';

const RCPT_DOMAIN = 'inbox.test';
const t0 = Date.now();
console.log('starting the cluster, its two nodes and the operator (about a minute the first time images are built)…');
// Two nodes: the example pool's two IPs in hostNetwork mode need one node each.
// The sink MX on the node's host end prints what it receives.
const fleet = await startMailFleet({
  nodes: 2,
  mx: { [RCPT_DOMAIN]: `mx.${RCPT_DOMAIN}` },
  onData: (m) => {
    const subject = /^Subject: (.*)$/m.exec(m.body.toString('latin1'))?.[1] ?? '';
    const dkim = /^DKIM-Signature: .*?\bd=([^;\s]+)/ms.exec(m.body.toString('latin1'))?.[1];
    console.log(`sink: ${m.from} → ${m.to.join(', ')} from ${m.remoteAddress} (EHLO ${m.heloName}${dkim ? `, DKIM d=${dkim}` : ''}): ${subject}`);
    return undefined;
  },
});
if ('skipped' in fleet) {
  console.error(`cannot start the test node: ${fleet.skipped}`);
  process.exit(1);
}
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping…');
  await fleet.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

const { node } = fleet;
const pool = await applyExamples(fleet);

console.log(`
mailfleet is running on a two-node cluster (${Math.round((Date.now() - t0) / 1000)} s).

  export KUBECONFIG=${fleet.kubeconfig}
  alias kubectl=${fleet.kubectlPath} helm=${fleet.helmPath}
  kubectl get sendingpools,maildomains,pods -A

Send a message through the pool's submission Service (STARTTLS + AUTH on 587):

  swaks --server ${pool.serviceIp}:587 --tls --auth-user ${pool.user} --auth-password '${pool.password}' \\
        --from news@example.com --to reader@${RCPT_DOMAIN}

It leaves from one of the pool's IPs (${pool.poolIps.join(', ')}), DKIM-signed for example.com, to the MX of
${RCPT_DOMAIN} (a sink here, at ${node.hostIp}:25); this window prints what arrives. Watch:

  kubectl logs -f -n ${pool.namespace} -l mailfleet.io/pool=transactional       # the relays
  kubectl logs -f -n ${fleet.operator.namespace} ${fleet.operator.pod}          # the operator
  curl -s http://${node.ip}:8080/metrics | grep ^mailfleet_                      # the first relay's metrics

Ctrl-C stops the cluster and removes everything it made.`);
