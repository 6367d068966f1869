// Objects as the apiserver would return them (defaults filled), for the render tests.
import { SendingPoolSchema, MailDomainSchema, type SendingPool, type MailDomain, type SendingPoolInput, type MailDomainInput } from '../api/index.ts';

export function pool(spec: Partial<SendingPoolInput['spec']> = {}, name = 'bulk'): SendingPool {
  return SendingPoolSchema.parse({
    apiVersion: 'mailfleet.io/v1alpha1',
    kind: 'SendingPool',
    metadata: { name, namespace: 'mail', uid: '11111111-2222-3333-4444-555555555555', generation: 1 },
    spec: {
      ips: [
        { address: '203.0.113.10', hostname: 'mta1.example.net', warmup: { preset: 'standard-30d' } },
        { address: '2001:db8::25', hostname: 'mta2.example.net' },
      ],
      submission: { tlsSecretRef: { name: 'relay-tls' }, authSecretRef: { name: 'relay-auth' } },
      ...spec,
    },
  });
}

export function domain(spec: Partial<MailDomainInput['spec']> = {}, name = 'example-com'): MailDomain {
  return MailDomainSchema.parse({
    apiVersion: 'mailfleet.io/v1alpha1',
    kind: 'MailDomain',
    metadata: { name, namespace: 'mail', uid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', generation: 1 },
    spec: { domain: 'example.com', poolRef: { name: 'bulk' }, ...spec },
  });
}
