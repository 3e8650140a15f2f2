{{- define "eks-pod-identity-agent.labels" -}}
app.kubernetes.io/component: pod-identity-agent
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/part-of: ekslink
{{- end }}

{{- define "eks-pod-identity-agent.objectLabels" -}}
{{ include "eks-pod-identity-agent.labels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* repository@digest when a digest is set (the tag is then ignored), else repository:tag;
global.imageRegistry replaces the registry. */}}
{{- define "eks-pod-identity-agent.image" -}}
{{- $ref := "" -}}
{{- with .Values.image -}}
{{- if .digest -}}
{{- $ref = printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- $ref = printf "%s:%s" .repository (.tag | default $.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
{{- include "eks-pod-identity-agent.withRegistry" (list $ref .Values.global.imageRegistry) -}}
{{- end }}

{{/* (list image registry): the registry replaces the image's first path component when that is a
registry (it has "." or ":" or is "localhost", Docker's rule) and goes in front otherwise; the Go
renderer's manifest.ImageWithRegistry. */}}
{{- define "eks-pod-identity-agent.withRegistry" -}}
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
{{- define "eks-pod-identity-agent.imagePullSecrets" -}}
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
{{- define "eks-pod-identity-agent.metricsPort" -}}
{{ regexReplaceAll "^.*:" .Values.metrics.addr "" | int }}
{{- end }}

{{- define "eks-pod-identity-agent.validate" -}}
{{- $problems := list -}}
{{- if not .Values.clusterName -}}
{{- $problems = append $problems "clusterName is required" -}}
{{- end -}}
{{- if not .Values.region -}}
{{- $problems = append $problems "region is required (e.g. eu-west-1)" -}}
{{- end -}}
{{- $port := include "eks-pod-identity-agent.metricsPort" . | int -}}
{{- if gt $port 65535 -}}
{{- $problems = append $problems (printf "metrics.addr %s: the port must be 0-65535" .Values.metrics.addr) -}}
{{- end -}}
{{- if or .Values.metrics.service.enabled .Values.metrics.serviceMonitor.enabled -}}
{{- if regexMatch "^(127\\.|localhost:|\\[::1\\]:|\\[::ffff:127\\.)" .Values.metrics.addr -}}
{{- $problems = append $problems (printf "metrics.addr %s is loopback, which the metrics Service cannot reach: listen on the node's address or on all addresses (:%d)" .Values.metrics.addr $port) -}}
{{- end -}}
{{- if eq $port 0 -}}
{{- $problems = append $problems "metrics.addr needs a fixed port for the metrics Service" -}}
{{- end -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]{0,53}[a-z0-9])?$" .Values.name) -}}
{{- $problems = append $problems (printf "name %s: the metrics Service %s-metrics must be a DNS-1035 label (a letter first, at most 63 characters)" .Values.name .Values.name) -}}
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

{{/* The probe's host (empty for a wildcard: the kubelet then probes the node IP) and port. */}}
{{- define "eks-pod-identity-agent.probe" -}}
{{- $host := regexReplaceAll ":[0-9]+$" .Values.probeAddr "" -}}
{{- $port := regexReplaceAll "^.*:" .Values.probeAddr "" -}}
httpGet:
  {{- if and $host (ne $host "0.0.0.0") }}
  host: {{ $host }}
  {{- end }}
  port: {{ $port }}
  scheme: HTTP
{{- end }}
