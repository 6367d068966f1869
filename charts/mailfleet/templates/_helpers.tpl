{{/* Chart name, overridable. */}}
{{- define "mailfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "mailfleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mailfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator pods (stable across upgrades). */}}
{{- define "mailfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mailfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels on every object. */}}
{{- define "mailfleet.labels" -}}
{{ include "mailfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: mailfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "mailfleet.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mailfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mailfleet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mailfleet.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Namespace of the leader-election Lease, as operator/main.ts picks it: the watched namespace when
there is one (--namespace), else the operator's own (POD_NAMESPACE).
*/}}
{{- define "mailfleet.leaseNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace -}}
{{- end -}}

{{- define "mailfleet.leaseName" -}}
{{- default (include "mailfleet.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/*
The operator's permissions (rules of its ClusterRole, or of its Role when watchNamespace is set).
Least privilege: the custom resources are only read and patched (never created or deleted); the
children the operator owns are fully managed (server-side apply needs create + patch; pruning
needs delete); pods and PVCs are read for status only; events are only emitted.
*/}}
{{- define "mailfleet.operatorRules" -}}
- apiGroups: ["mailfleet.io"]
  resources: ["sendingpools", "maildomains"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["mailfleet.io"]
  resources: ["sendingpools/status", "maildomains/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["mailfleet.io"]
  # Setting blockOwnerDeletion on a child's owner reference needs update on the owner's finalizers.
  resources: ["sendingpools/finalizers", "maildomains/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["configmaps", "secrets", "services"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# The stats reader (operator/observe) finds each ready relay through its Service's EndpointSlices.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
{{- if .Values.rbac.egress.multus }}
# egress mode multus: one NetworkAttachmentDefinition per pool.
- apiGroups: ["k8s.cni.cncf.io"]
  resources: ["network-attachment-definitions"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}
{{- end -}}

{{/*
Rules on cluster-scoped objects, which a namespaced Role cannot grant: the CiliumEgressGatewayPolicy
of egress mode ciliumEgressGateway (one per IP; cleaned up through a finalizer on the SendingPool,
as a cluster-scoped object cannot have a namespaced owner).
*/}}
{{- define "mailfleet.clusterScopedRules" -}}
{{- if .Values.rbac.egress.ciliumEgressGateway }}
- apiGroups: ["cilium.io"]
  resources: ["ciliumegressgatewaypolicies"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}
{{- end -}}
