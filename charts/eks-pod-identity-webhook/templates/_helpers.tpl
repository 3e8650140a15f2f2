{{- define "eks-pod-identity-webhook.labels" -}}
app.kubernetes.io/component: pod-identity-webhook
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/part-of: ekslink
{{- end }}

{{- define "eks-pod-identity-webhook.objectLabels" -}}
{{ include "eks-pod-identity-webhook.labels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* repository@digest when a digest is set (the tag is then ignored), else repository:tag;
global.imageRegistry replaces the registry (the first path component when it has "." or ":" or
is "localhost", Docker's rule; else it goes in front), as manifest.ImageWithRegistry does. */}}
{{- define "eks-pod-identity-webhook.image" -}}
{{- $ref := "" -}}
{{- with .Values.image -}}
{{- if .digest -}}
{{- $ref = printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- $ref = printf "%s:%s" .repository (.tag | default $.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
{{- $registry := .Values.global.imageRegistry -}}
{{- $parts := splitList "/" $ref -}}
{{- if not $registry -}}
{{ $ref }}
{{- else if and (gt (len $parts) 1) (regexMatch "[.:]|^localhost$" (first $parts)) -}}
{{ $registry }}/{{ rest $parts | join "/" }}
{{- else -}}
{{ $registry }}/{{ $ref }}
{{- end -}}
{{- end }}

{{/* global.imagePullSecrets then imagePullSecrets, names or {name: ...}, each once. */}}
{{- define "eks-pod-identity-webhook.imagePullSecrets" -}}
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

{{- define "eks-pod-identity-webhook.certSecret" -}}
{{ .Values.name }}-cert
{{- end }}

{{- define "eks-pod-identity-webhook.validate" -}}
{{- $problems := list -}}
{{- with .Values.certificates -}}
{{- if and (not .tlsSecretName) (or .caBundle .certManagerInjectFrom) -}}
{{- $problems = append $problems "certificates.caBundle and certificates.certManagerInjectFrom need certificates.tlsSecretName: with self-managed certificates the webhook sets the caBundle itself" -}}
{{- end -}}
{{- end -}}
{{- if eq (int .Values.port) (int .Values.metrics.port) -}}
{{- $problems = append $problems "metrics.port must differ from port" -}}
{{- end -}}
{{- range $k, $v := .Values.podLabels -}}
{{- if has $k (list "app.kubernetes.io/name" "app.kubernetes.io/component" "app.kubernetes.io/part-of") -}}
{{- $problems = append $problems (printf "podLabels.%s is set by the chart" $k) -}}
{{- end -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "\n%s" (join "\n" $problems)) -}}
{{- end -}}
{{- end }}
