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

{{/* repository@digest when a digest is set (the tag is then ignored), else repository:tag. */}}
{{- define "eks-connector.image" -}}
{{- with .Values.images.connector -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag | default $.Chart.AppVersion }}
{{- end -}}
{{- end -}}
{{- end }}

{{- define "eks-connector.agentImage" -}}
{{ .Values.images.ssmAgent.repository }}:{{ .Values.images.ssmAgent.tag }}
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
