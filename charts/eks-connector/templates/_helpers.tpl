{{/* Labels the library renderer (manifest) sets; the pod selector is the name alone. */}}
{{- define "eks-connector.labels" -}}
app.kubernetes.io/component: connector
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/part-of: ekslink
{{- end }}

{{/* Object labels: the renderer's plus Helm's. */}}
{{- define "eks-connector.objectLabels" -}}
{{ include "eks-connector.labels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* repository@digest when a digest is set (the tag is then ignored), else repository:tag;
global.imageRegistry replaces the registry. */}}
{{- define "eks-connector.image" -}}
{{- $ref := "" -}}
{{- with .Values.images.connector -}}
{{- if .digest -}}
{{- $ref = printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- $ref = printf "%s:%s" .repository (.tag | default $.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
{{- include "eks-connector.withRegistry" (list $ref .Values.global.imageRegistry) -}}
{{- end }}

{{- define "eks-connector.agentImage" -}}
{{- $ref := printf "%s:%s" .Values.images.ssmAgent.repository .Values.images.ssmAgent.tag -}}
{{- include "eks-connector.withRegistry" (list $ref .Values.global.imageRegistry) -}}
{{- end }}

{{/* (list image registry): the registry replaces the image's first path component when that is a
registry (it has "." or ":" or is "localhost", Docker's rule) and goes in front otherwise; the Go
renderer's manifest.ImageWithRegistry. */}}
{{- define "eks-connector.withRegistry" -}}
{{- $image := index . 0 -}}
{{- $registry := index . 1 -}}
{{- $parts := splitList "/" $image -}}
{{- if not $registry -}}
{{ $image }}
{{- else if and (gt (len $parts) 1) (regexMatch "[.:]|^localhost$" (first $parts)) -}}
{{ $registry }}/{{ rest $parts | join "/" }}
{{- else -}}
{{ $registry }}/{{ $image }}
{{- end -}}
{{- end }}

{{/* global.imagePullSecrets then imagePullSecrets, names or {name: ...}, each once. */}}
{{- define "eks-connector.imagePullSecrets" -}}
{{- $names := list -}}
{{- range concat (.Values.global.imagePullSecrets | default list) .Values.imagePullSecrets -}}
{{- if kindIs "string" . -}}
{{- $names = append $names . -}}
{{- else -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- end -}}
{{- with uniq $names }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The port of metrics.addr. */}}
{{- define "eks-connector.metricsPort" -}}
{{ regexReplaceAll "^.*:" .Values.metrics.addr "" | int }}
{{- end }}

{{- define "eks-connector.activationSecret" -}}
{{ .Values.activation.existingSecret | default "eks-connector-activation" }}
{{- end }}

{{/* Fail early, one message per problem, before anything reaches the cluster. */}}
{{- define "eks-connector.validate" -}}
{{- $problems := list -}}
{{- if not .Values.activation.id -}}
{{- $problems = append $problems "activation.id is required (the activationId from \"aws eks register-cluster\")" -}}
{{- else if not (regexMatch "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$" .Values.activation.id) -}}
{{- /* Checked here, not in the schema, which would echo the value: often the code in the wrong field. */ -}}
{{- $problems = append $problems "activation.id is not the UUID activationId from \"aws eks register-cluster\" (value not shown: it may be the activation code)" -}}
{{- end -}}
{{- if and (not .Values.activation.code) (not .Values.activation.existingSecret) -}}
{{- $problems = append $problems "activation.code or activation.existingSecret is required" -}}
{{- end -}}
{{- if and .Values.activation.code .Values.activation.existingSecret -}}
{{- $problems = append $problems "set activation.code or activation.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.activation.code (lt (len .Values.activation.code) 20) -}}
{{- /* Checked here, not in the schema: schema errors echo the value, and this one is secret. */ -}}
{{- $problems = append $problems "activation.code is shorter than 20 characters: use the activationCode from \"aws eks register-cluster\"" -}}
{{- end -}}
{{- if not .Values.region -}}
{{- $problems = append $problems "region is required (the region of the activation, e.g. eu-west-1)" -}}
{{- end -}}
{{- range $k, $v := .Values.env -}}
{{- if has $k (list "POD_NAME" "POD_NAMESPACE" "POD_IP") -}}
{{- $problems = append $problems (printf "env.%s is set by the chart" $k) -}}
{{- end -}}
{{- end -}}
{{- $port := include "eks-connector.metricsPort" . | int -}}
{{- if gt $port 65535 -}}
{{- $problems = append $problems (printf "metrics.addr %s: the port must be 0-65535" .Values.metrics.addr) -}}
{{- end -}}
{{- if or .Values.metrics.service.enabled .Values.metrics.serviceMonitor.enabled -}}
{{- if regexMatch "^(127\\.|localhost:|\\[::1\\]:|\\[::ffff:127\\.)" .Values.metrics.addr -}}
{{- $problems = append $problems (printf "metrics.addr %s is loopback, which the metrics Service cannot reach: listen on the pod IP ([$(POD_IP)]:%d) or on all addresses (:%d)" .Values.metrics.addr $port $port) -}}
{{- end -}}
{{- if eq $port 0 -}}
{{- $problems = append $problems "metrics.addr needs a fixed port for the metrics Service" -}}
{{- end -}}
{{- end -}}
{{- $chartLabels := list "app.kubernetes.io/name" "app.kubernetes.io/component" "app.kubernetes.io/part-of" "app.kubernetes.io/instance" "app.kubernetes.io/managed-by" "app.kubernetes.io/version" "helm.sh/chart" -}}
{{- range $field, $labels := dict "podLabels" .Values.podLabels "metrics.serviceMonitor.labels" .Values.metrics.serviceMonitor.labels -}}
{{- range $k, $v := $labels -}}
{{- if has $k $chartLabels -}}
{{- $problems = append $problems (printf "%s.%s is set by the chart (app.kubernetes.io/name is the pod selector)" $field $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "\n%s" (join "\n" $problems)) -}}
{{- end -}}
{{- end }}

{{- define "eks-connector.extraEnv" -}}
{{- range $k, $v := .Values.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end }}
