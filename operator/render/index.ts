// Public surface of the pure render layer: SendingPool/MailDomain → desired Kubernetes objects.
export * from './names.ts';
export * from './relay-config.ts';
export * from './pool.ts';
export * from './egress.ts';
export * from './dkim.ts';
export * from './feedback.ts';
export * from './dns.ts';
export * from './status.ts';
export * from './warmup.ts';
export * from './rollout.ts';
export * from './bounce-mx.ts';
