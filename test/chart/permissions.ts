// What the operator must be allowed to do, and a sample of what it must not (least privilege).
// Checked twice: statically against the rendered RBAC rules (template.test.ts) and by the real
// apiserver's authorizer with `kubectl auth can-i --as=system:serviceaccount:…` (install.test.ts).

export interface Permission {
  group: string;
  /** resource, or resource/subresource */
  resource: string;
  verb: string;
  /** cluster-scoped resource (no namespace) */
  clusterScoped?: boolean;
}

const manage = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const read = ['get', 'list', 'watch'];

function expand(group: string, resources: string[], verbs: string[], clusterScoped = false): Permission[] {
  return resources.flatMap((resource) => verbs.map((verb) => ({ group, resource, verb, ...(clusterScoped ? { clusterScoped } : {}) })));
}

/** In the watched namespace(s). */
export const operatorNeeds: Permission[] = [
  ...expand('mailfleet.io', ['sendingpools', 'maildomains'], ['get', 'list', 'watch', 'update', 'patch']),
  ...expand('mailfleet.io', ['sendingpools/status', 'maildomains/status'], ['get', 'update', 'patch']),
  ...expand('mailfleet.io', ['sendingpools/finalizers', 'maildomains/finalizers'], ['update']),
  ...expand('', ['configmaps', 'secrets', 'services'], manage),
  ...expand('apps', ['statefulsets'], manage),
  ...expand('policy', ['poddisruptionbudgets'], manage),
  ...expand('networking.k8s.io', ['networkpolicies'], manage),
  ...expand('', ['pods', 'persistentvolumeclaims'], read),
  ...expand('', ['events'], ['create', 'patch']),
  ...expand('discovery.k8s.io', ['endpointslices'], read),
  ...expand('k8s.cni.cncf.io', ['network-attachment-definitions'], manage),
];

/** Cluster-scoped objects (needed in both modes). */
export const clusterScopedNeeds: Permission[] = expand('cilium.io', ['ciliumegressgatewaypolicies'], manage, true);

/** In the leader-election namespace, on the operator's own Lease. */
export const leaseNeeds: Permission[] = [
  { group: 'coordination.k8s.io', resource: 'leases', verb: 'create' },
  ...expand('coordination.k8s.io', ['leases'], ['get', 'update', 'patch']),
];

/** Never granted, in any namespace. */
export const operatorForbidden: Permission[] = [
  ...expand('mailfleet.io', ['sendingpools', 'maildomains'], ['create', 'delete', 'deletecollection']),
  ...expand('', ['pods'], ['create', 'update', 'patch', 'delete']),
  ...expand('', ['persistentvolumeclaims'], ['create', 'delete']),
  ...expand('', ['pods/exec', 'serviceaccounts/token'], ['create']),
  ...expand('', ['events'], ['delete', 'update']),
  ...expand('', ['serviceaccounts'], ['create']),
  ...expand('apps', ['deployments', 'daemonsets'], ['create']),
  ...expand('rbac.authorization.k8s.io', ['roles', 'rolebindings'], ['create', 'bind', 'escalate']),
  ...expand('', ['nodes', 'namespaces', 'persistentvolumes'], ['get', 'list'], true),
  ...expand('rbac.authorization.k8s.io', ['clusterroles', 'clusterrolebindings'], ['create', 'bind', 'escalate'], true),
  ...expand('apiextensions.k8s.io', ['customresourcedefinitions'], ['create', 'update', 'delete'], true),
  ...expand('admissionregistration.k8s.io', ['validatingwebhookconfigurations'], ['create'], true),
];

export function describe(p: Permission): string {
  return `${p.verb} ${p.group ? `${p.resource}.${p.group}` : p.resource}`;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

function matches(list: readonly string[] | undefined, value: string): boolean {
  return (list ?? []).some((x) => x === '*' || x === value);
}

/**
 * Whether a set of RBAC rules allows a request, as the apiserver's RBAC authorizer decides
 * (apiGroups, resources incl. subresource, verbs; resourceNames restrict to those objects).
 */
export function allows(rules: readonly PolicyRule[], p: Permission, resourceName?: string): boolean {
  return rules.some(
    (r) =>
      matches(r.apiGroups, p.group) &&
      matches(r.resources, p.resource) &&
      matches(r.verbs, p.verb) &&
      (r.resourceNames === undefined || r.resourceNames.length === 0 || (resourceName !== undefined && r.resourceNames.includes(resourceName))),
  );
}
