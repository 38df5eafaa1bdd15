{{/*
The pod template shared by the Deployment, the Rollout and the all-in-one StatefulSet.
Input: {"root": $, "name": "<component>", "c": <merged settings>, "saName": "...",
        "dataVolume": "<claim template name or empty>", "secretsFor": "<name in externalSecrets.secrets.*.components, default: name>"}.
The config checksum annotation rolls the pods when the ConfigMap changes.
*/}}
{{- define "quanttrader.podTemplate" -}}
{{- $root := .root }}
{{- $c := .c }}
{{- $files := include "quanttrader.componentSecretFiles" (dict "root" $root "name" (default .name .secretsFor)) | fromJsonArray }}
{{- $args := concat $c.args $c.extraArgs }}
{{- range $files }}{{ if .file }}{{ $args = concat $args (list "--config" (printf "%s/%s" .mountPath .file)) }}{{ end }}{{ end }}
metadata:
  labels:
    {{- include "quanttrader.componentLabels" . | nindent 4 }}
    {{- with $c.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ .saName }}
  automountServiceAccountToken: {{ $c.serviceAccount.automountToken }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
  securityContext:
    {{- include "quanttrader.podSecurityContext" . | nindent 4 }}
  {{- if $c.topologySpread.enabled }}
  topologySpreadConstraints:
    - maxSkew: {{ $c.topologySpread.maxSkew }}
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: {{ $c.topologySpread.zoneWhenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "quanttrader.componentSelectorLabels" . | nindent 10 }}
      matchLabelKeys: [pod-template-hash]
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "quanttrader.componentSelectorLabels" . | nindent 10 }}
      matchLabelKeys: [pod-template-hash]
  {{- end }}
  containers:
    - name: quanttrader
      image: {{ include "quanttrader.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml $args | nindent 8 }}
      ports:
        - name: http
          containerPort: {{ $c.containerPort }}
          protocol: TCP
      {{- /* Only variables the binary reads (crates/api/src/config.rs, crates/node/src/config.rs). */}}
      env:
        {{- if not .dataVolume }}
        # `serve <role>`: listen on every interface, on the container port.
        - name: QT_LISTEN
          value: {{ printf "0.0.0.0:%v" $c.containerPort | quote }}
        # Prefix of the role's Kafka client ids.
        - name: QT_KAFKA__CLIENT_ID
          value: {{ .name | quote }}
        {{- end }}
        {{- range $k, $v := $c.env }}
        - name: {{ $k }}
          value: {{ $v | toString | quote }}
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "quanttrader.fullname" $root }}
        {{- range include "quanttrader.componentSecrets" (dict "root" $root "name" (default .name .secretsFor)) | fromJsonArray }}
        - secretRef:
            name: {{ . }}
        {{- end }}
      securityContext:
        {{- include "quanttrader.containerSecurityContext" . | nindent 8 }}
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      startupProbe:
        httpGet:
          path: {{ $c.probes.startup.path }}
          port: http
        periodSeconds: {{ $c.probes.startup.periodSeconds }}
        timeoutSeconds: {{ $c.probes.startup.timeoutSeconds }}
        failureThreshold: {{ $c.probes.startup.failureThreshold }}
      livenessProbe:
        httpGet:
          path: {{ $c.probes.liveness.path }}
          port: http
        initialDelaySeconds: {{ $c.probes.liveness.initialDelaySeconds }}
        periodSeconds: {{ $c.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $c.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $c.probes.liveness.failureThreshold }}
      readinessProbe:
        httpGet:
          path: {{ $c.probes.readiness.path }}
          port: http
        initialDelaySeconds: {{ $c.probes.readiness.initialDelaySeconds }}
        periodSeconds: {{ $c.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $c.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $c.probes.readiness.failureThreshold }}
      volumeMounts:
        # The root file system is read-only; /tmp is the only scratch space.
        - name: tmp
          mountPath: /tmp
        {{- if .dataVolume }}
        - name: {{ .dataVolume }}
          mountPath: /var/lib/quanttrader
        {{- end }}
        {{- range $files }}
        - name: {{ .name }}
          mountPath: {{ .mountPath }}
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- range $files }}
    - name: {{ .name }}
      secret:
        secretName: {{ .secretName }}
        defaultMode: 0440
    {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
