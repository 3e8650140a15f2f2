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

{{/* repository@digest when a digest is set (the tag is then ignored), else repository:tag. */}}
{{- define "eks-pod-identity-agent.image" -}}
{{- with .Values.image -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag | default $.Chart.AppVersion }}
{{- end -}}
{{- end -}}
{{- end }}

{{- define "eks-pod-identity-agent.validate" -}}
{{- $problems := list -}}
{{- if not .Values.clusterName -}}
{{- $problems = append $problems "clusterName is required" -}}
{{- end -}}
{{- if not .Values.region -}}
{{- $problems = append $problems "region is required (e.g. eu-west-1)" -}}
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
