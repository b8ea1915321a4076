{{- define "breakwater.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "breakwater.fullname" -}}
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

{{- /* The namespace of every object: namespaceOverride, else the release's. */ -}}
{{- define "breakwater.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* registry/repository:tag@digest; the tag defaults to appVersion, a digest pins it. */ -}}
{{- define "breakwater.image" -}}
{{- with .Values.image -}}
{{- if .registry }}{{ .registry }}/{{ end }}{{ .repository }}
{{- if .digest }}@{{ .digest }}{{ else }}:{{ .tag | default $.Chart.AppVersion }}{{ end }}
{{- end }}
{{- end }}

{{- /* Whether the cluster serves a prometheus-operator kind (monitoring.coreos.com/v1/<Kind>):
helm template needs --api-versions for it, as kube-state-metrics' and Falco's charts do. */ -}}
{{- define "breakwater.hasMonitoringKind" -}}
{{- if .root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" .kind) }}true{{ end }}
{{- end }}

{{- define "breakwater.selectorLabels" -}}
app.kubernetes.io/name: {{ include "breakwater.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: exporter
{{- end }}

{{- /* Labels of every object; the exporter's objects add the component. */ -}}
{{- define "breakwater.commonLabels" -}}
app.kubernetes.io/name: {{ include "breakwater.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: breakwater
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "breakwater.labels" -}}
{{ include "breakwater.commonLabels" . }}
app.kubernetes.io/component: exporter
{{- end }}

{{- define "breakwater.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "breakwater.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* The Secret holding web-config.yml, if any. */ -}}
{{- define "breakwater.webSecret" -}}
{{- if .Values.web.existingSecret }}{{ .Values.web.existingSecret }}{{ else if .Values.web.config }}{{ include "breakwater.fullname" . }}-web{{ end }}
{{- end }}

{{- /* The Secret holding alertmanager-http.yml, if any. */ -}}
{{- define "breakwater.alertmanagerSecret" -}}
{{- if .Values.alertmanager.existingSecret }}{{ .Values.alertmanager.existingSecret }}{{ else if .Values.alertmanager.httpConfig }}{{ include "breakwater.fullname" . }}-alertmanager{{ end }}
{{- end }}

{{- /* --name=value when value is set. */ -}}
{{- define "breakwater.flag" -}}
{{- if not (kindIs "invalid" .value) }}{{ if ne (toString .value) "" }}
- --{{ .name }}={{ .value }}
{{- end }}{{ end }}
{{- end }}

{{- /* The rules values as the pack and the push read them: an empty
selector selects the scrape job of serviceMonitor.jobName. */ -}}
{{- define "breakwater.rulesValues" -}}
{{- $r := deepCopy .Values.rules -}}
{{- if not $r.selector }}{{ $_ := set $r "selector" (printf "job=%q" .Values.serviceMonitor.jobName) }}{{ end -}}
{{- toYaml $r -}}
{{- end }}
