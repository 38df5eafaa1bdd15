{{/*
Naming and labels follow `helm create`: names are truncated to 63 characters (DNS label limit)
and every resource carries the app.kubernetes.io/* recommended labels.
*/}}

{{- define "quanttrader.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "quanttrader.fullname" -}}
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

{{- define "quanttrader.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels common to every resource of the release. */}}
{{- define "quanttrader.labels" -}}
helm.sh/chart: {{ include "quanttrader.chart" . }}
{{ include "quanttrader.selectorLabels" . }}
app.kubernetes.io/version: {{ include "quanttrader.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: quanttrader
quanttrader.io/environment: {{ .Values.environment | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "quanttrader.selectorLabels" -}}
app.kubernetes.io/name: {{ include "quanttrader.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Per-component helpers take a dict: {"root": $, "name": "<component>", "c": <merged settings>}.
*/}}
{{- define "quanttrader.componentFullname" -}}
{{- printf "%s-%s" (include "quanttrader.fullname" .root | trunc 40 | trimSuffix "-") .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "quanttrader.componentLabels" -}}
{{ include "quanttrader.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "quanttrader.componentSelectorLabels" -}}
{{ include "quanttrader.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
The settings of one component: componentDefaults with the component's own entry merged over
them. Returned as YAML; callers use `fromYaml`. deepCopy keeps .Values untouched for the next
component.
*/}}
{{- define "quanttrader.componentValues" -}}
{{- $defaults := deepCopy .root.Values.componentDefaults }}
{{- $own := deepCopy (index .root.Values.components .name) }}
{{- toYaml (mergeOverwrite $defaults $own) }}
{{- end }}

{{/* The components that render, in a stable order: none in all-in-one mode. */}}
{{- define "quanttrader.enabledComponents" -}}
{{- $out := list }}
{{- if not .Values.allInOne.enabled }}
{{- range $name := keys .Values.components | sortAlpha }}
{{- if (index $.Values.components $name).enabled }}
{{- $out = append $out $name }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
The component an Ingress route sends its traffic to: `all-in-one` in all-in-one mode, else the
route's component when it is enabled, else its `fallback` when that is enabled, else nothing
(the path is left out of the Ingress). Takes (dict "root" $ "route" $route).
*/}}
{{- define "quanttrader.routeTarget" -}}
{{- $enabled := include "quanttrader.enabledComponents" .root | fromJsonArray }}
{{- if .root.Values.allInOne.enabled }}
{{- "all-in-one" }}
{{- else if has .route.component $enabled }}
{{- .route.component }}
{{- else if and .route.fallback (has .route.fallback $enabled) }}
{{- .route.fallback }}
{{- end }}
{{- end }}

{{- define "quanttrader.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Registry/repository of the image. Without image.registry, a cluster that knows its account
(the ApplicationSet passes aws.accountId) pulls from that account's ECR in aws.region; with
neither, the bare repository is used (a local image, as in kind or the unit tests).
*/}}
{{- define "quanttrader.imageRepository" -}}
{{- $registry := .Values.image.registry }}
{{- if and (not $registry) .Values.aws.accountId }}
{{- $registry = printf "%s.dkr.ecr.%s.amazonaws.com" (toString .Values.aws.accountId) .Values.aws.region }}
{{- end }}
{{- if $registry }}
{{- printf "%s/%s" $registry .Values.image.repository }}
{{- else }}
{{- .Values.image.repository }}
{{- end }}
{{- end }}

{{- define "quanttrader.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" (include "quanttrader.imageRepository" .) .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" (include "quanttrader.imageRepository" .) (include "quanttrader.imageTag" .) }}
{{- end }}
{{- end }}

{{- define "quanttrader.roleArn" -}}
{{- if not .root.Values.aws.accountId }}
{{- fail "aws.accountId is required when IRSA is enabled (the ApplicationSet passes it from the cluster secret)" }}
{{- end }}
{{- printf "arn:aws:iam::%s:role/%s-%s" (toString .root.Values.aws.accountId) .root.Values.aws.rolePrefix .suffix }}
{{- end }}

{{- define "quanttrader.secretStoreName" -}}
{{- default (include "quanttrader.fullname" .) .Values.externalSecrets.secretStore.name }}
{{- end }}

{{- define "quanttrader.secretName" -}}
{{- printf "%s-%s" (include "quanttrader.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Names of the ExternalSecret-made Secrets a component (or allInOne) loads with envFrom. */}}
{{- define "quanttrader.componentSecrets" -}}
{{- $out := list }}
{{- if .root.Values.externalSecrets.enabled }}
{{- range $sname := keys .root.Values.externalSecrets.secrets | sortAlpha }}
{{- $s := index $.root.Values.externalSecrets.secrets $sname }}
{{- if and (has $.name $s.components) (not $s.mountPath) }}
{{- $out = append $out (include "quanttrader.secretName" (dict "root" $.root "name" $sname)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Whether an ExternalSecret is needed: some rendered workload loads it. */}}
{{- define "quanttrader.secretUsed" -}}
{{- $used := false }}
{{- if .root.Values.allInOne.enabled }}
{{- $used = has "allInOne" .s.components }}
{{- else }}
{{- range $name := include "quanttrader.enabledComponents" .root | fromJsonArray }}
{{- if has $name $.s.components }}{{ $used = true }}{{ end }}
{{- end }}
{{- end }}
{{- if $used }}true{{ end }}
{{- end }}

{{/*
Pod security context shared by every workload: uid 10001 is the image's non-root user, and
fsGroup makes mounted volumes writable by it.
*/}}
{{- define "quanttrader.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "quanttrader.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Checkov skips with their reasons, as pod-template annotations (Checkov reads
`checkov.io/skip<N>: <check>=<reason>` on the workload). Each one is a deliberate choice:
  CKV_K8S_43 digest: tags are immutable in ECR (Terraform sets image_tag_mutability) and GitOps
             promotes tags in values-<env>.yaml; set image.digest to pin a digest instead.
  CKV_K8S_35 secrets as env: the binary takes its configuration only from QT_* variables
             (DESIGN.md); the Secrets are synced by External Secrets and never logged.
*/}}
{{- define "quanttrader.checkovSkips" -}}
{{- if not .Values.image.digest }}
checkov.io/skip1: CKV_K8S_43=Immutable ECR tags promoted through git; set image.digest to pin by digest
{{- end }}
checkov.io/skip2: CKV_K8S_35=The binary reads configuration only from QT_* environment variables; secrets come from External Secrets
{{- end }}

{{- define "quanttrader.serviceAccountName" -}}
{{- if .c.serviceAccount.create }}
{{- default (include "quanttrader.componentFullname" .) .c.serviceAccount.name }}
{{- else }}
{{- default "default" .c.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Secrets of a component mounted as files (entries with `mountPath`), as a JSON list of
{"name": <volume>, "secretName": ..., "mountPath": ..., "file": <its *.toml key>}.
Input: {"root": $, "name": "<name in externalSecrets.secrets.*.components>"}.
*/}}
{{- define "quanttrader.componentSecretFiles" -}}
{{- $out := list }}
{{- if .root.Values.externalSecrets.enabled }}
{{- range $sname := keys .root.Values.externalSecrets.secrets | sortAlpha }}
{{- $s := index $.root.Values.externalSecrets.secrets $sname }}
{{- if and (has $.name $s.components) $s.mountPath }}
{{- $file := "" }}
{{- range $k, $_ := $s.template }}{{ if hasSuffix ".toml" $k }}{{ $file = $k }}{{ end }}{{ end }}
{{- $out = append $out (dict "name" (printf "secret-%s" $sname) "secretName" (include "quanttrader.secretName" (dict "root" $.root "name" $sname)) "mountPath" $s.mountPath "file" $file) }}
{{- end }}
{{- end }}
{{- end }}
{{- if gt (len $out) 1 }}
{{- fail (printf "component %s mounts %d configuration secrets; the binary takes one --config" .name (len $out)) }}
{{- end }}
{{- toJson $out }}
{{- end }}
