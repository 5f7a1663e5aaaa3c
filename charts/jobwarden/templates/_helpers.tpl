{{/*
Chart name, truncated to the 63 characters a label value may hold.
*/}}
{{- define "jobwarden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every resource name.
*/}}
{{- define "jobwarden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "jobwarden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object the chart creates.
*/}}
{{- define "jobwarden.labels" -}}
helm.sh/chart: {{ include "jobwarden.chart" . }}
{{ include "jobwarden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobwarden
{{- end }}

{{/*
Labels that select the operator's pods (immutable once deployed).
*/}}
{{- define "jobwarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "jobwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jobwarden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "jobwarden.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "jobwarden.metricsServiceName" -}}
{{- printf "%s-metrics" (include "jobwarden.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Whether the operator watches every namespace ("true") or a list ("").
*/}}
{{- define "jobwarden.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/*
Rules for the namespaced resources the operator works on. Granted by the
ClusterRole when all namespaces are watched, by a Role in each watched
namespace otherwise. Nothing on secrets, configmaps or any other resource.
Each verb is a call the operator makes (tests/cluster/test_rbac.py reads
the API server's audit log to prove it, and that nothing else is needed):
kopf lists and watches JobSchedules and Jobs; a reconcile GETs its
JobSchedule and merge-patches its status; runs are Jobs created and deleted
(history limits, terminate, stale, never started); the start guard lists
the pods of a Job past its start deadline whose status shows no pod that ran
(never a watch on pods); a forced terminate lists a Job's pods,
patches away the Job controller's tracking finalizer (else a zero-grace
delete leaves the pod until kube-controller-manager gets to it) and deletes
them; Events are created, never patched (kopf's own event posting is
switched off). Patching pods grants no more than creating Jobs already does.
*/}}
{{- define "jobwarden.namespacedRules" -}}
- apiGroups: ["jobwarden.io"]
  resources: ["jobschedules"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["jobwarden.io"]
  resources: ["jobschedules/status"]
  verbs: ["patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
Fail early on settings that cannot work together.
*/}}
{{- define "jobwarden.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicas=%d requires leaderElection.enabled=true: without a leader, several operator replicas would all act on every JobSchedule" (int .Values.replicas)) }}
{{- end }}
{{- if not (has .Values.logFormat (list "text" "json")) }}
{{- fail (printf "logFormat must be text or json, not %q" (toString .Values.logFormat)) }}
{{- end }}
{{- if ne (len .Values.watchNamespaces) (len (uniq .Values.watchNamespaces)) }}
{{- fail "watchNamespaces lists a namespace more than once" }}
{{- end }}
{{- end }}

{{- define "jobwarden.metricsReaderName" -}}
{{- printf "%s-metrics-reader" (include "jobwarden.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The operator's pod affinity: the user's when given; else, with several
replicas, anti-affinity on the node (preferred for "soft", required for
"hard"), so that one node's loss never takes every replica.
*/}}
{{- define "jobwarden.affinity" -}}
{{- if .Values.affinity }}
{{- toYaml .Values.affinity }}
{{- else if and (gt (int .Values.replicas) 1) (ne .Values.podAntiAffinity "none") }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "jobwarden.selectorLabels" . | fromYaml)) }}
podAntiAffinity:
{{- if eq .Values.podAntiAffinity "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    {{- toYaml (list $term) | nindent 4 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        {{- toYaml $term | nindent 8 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Notifications: the ConfigMap of the sinks file, the file itself (JSON, as
jobwarden.notify.sinks reads it), and where each sink's token Secret is mounted.
*/}}
{{- define "jobwarden.notificationsName" -}}
{{- printf "%s-notifications" (include "jobwarden.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "jobwarden.sinksFile" -}}
{{- $sinks := list }}
{{- range .Values.notifications.sinks }}
{{- $sink := dict "name" .name "url" .url }}
{{- with .mode }}{{ $_ := set $sink "mode" . }}{{ end }}
{{- with .timeoutSeconds }}{{ $_ := set $sink "timeoutSeconds" . }}{{ end }}
{{- with .maxAttempts }}{{ $_ := set $sink "maxAttempts" . }}{{ end }}
{{- with .queueSize }}{{ $_ := set $sink "queueSize" . }}{{ end }}
{{- if .tokenSecret }}
{{- $_ := set $sink "tokenFile" (printf "/etc/jobwarden/notify-tokens/%s/%s" .name (.tokenSecret.key | default "token")) }}
{{- end }}
{{- $sinks = append $sinks $sink }}
{{- end }}
{{- dict "sinks" $sinks | toJson }}
{{- end }}

{{- define "jobwarden.dueSoonName" -}}
{{- printf "%s-due-soon" (include "jobwarden.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
