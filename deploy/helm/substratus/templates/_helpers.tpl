{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "substratus.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of a service's Deployment, ServiceAccount, ClusterRole, Service and PDB. */}}
{{- define "substratus.serviceName" -}}
{{- printf "%s-%s" (include "substratus.fullname" .root) .name -}}
{{- end -}}

{{- define "substratus.labels" -}}
app.kubernetes.io/name: substratus
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "substratus.selectorLabels" -}}
app.kubernetes.io/name: substratus
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Settings of one service: .Values.defaults overridden by .Values.services.<name>. */}}
{{- define "substratus.serviceValues" -}}
{{- $own := index .root.Values.services .name | default dict -}}
{{- mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy $own) | toJson -}}
{{- end -}}

{{/* The permissions file: files/permissions.yaml. */}}
{{- define "substratus.permissions" -}}
{{- .Files.Get "files/permissions.yaml" -}}
{{- end -}}

{{/* NATS ------------------------------------------------------------------------------- */}}

{{- define "substratus.natsBundled" -}}
{{- if not .Values.nats.url -}}true{{- end -}}
{{- end -}}

{{- define "substratus.natsSecretName" -}}
{{- .Values.nats.auth.existingSecret | default (printf "%s-nats-users" (include "substratus.fullname" .)) -}}
{{- end -}}

{{/* scheme://host:port of the bus, without credentials. */}}
{{- define "substratus.natsAddress" -}}
{{- if .Values.nats.url -}}
{{- .Values.nats.url -}}
{{- else -}}
{{- $scheme := ternary "tls" "nats" .Values.nats.tls.enabled -}}
{{- printf "%s://%s-nats.%s.svc:4222" $scheme (include "substratus.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* The environment variable of the bundled server that holds a service's password. */}}
{{- define "substratus.natsPasswordVar" -}}
{{- printf "NATS_PASSWORD_%s" (. | upper | replace "-" "_") -}}
{{- end -}}

{{/*
The NATS permissions of one service as JSON (valid NATS configuration syntax), expanded from
files/permissions.yaml: the common stream subjects, the service's own publish subjects, its durable
consumer's subjects and the ephemeral-consumer subjects, denying other services' durables by name.
*/}}
{{- define "substratus.natsPermissions" -}}
{{- $perms := include "substratus.permissions" .root | fromYaml -}}
{{- $svc := index $perms.services .name -}}
{{- $nats := $svc.nats -}}
{{- $allow := concat $perms.natsCommon.publish.allow $nats.publish -}}
{{- $deny := list -}}
{{- $own := "" -}}
{{- with $nats.durable -}}
{{- $own = .name -}}
{{- $allow = concat $allow (list
    (printf "$JS.API.CONSUMER.DURABLE.CREATE.%s.%s" .stream .name)
    (printf "$JS.API.CONSUMER.CREATE.%s.%s" .stream .name)
    (printf "$JS.API.CONSUMER.CREATE.%s.%s.>" .stream .name)
    (printf "$JS.API.CONSUMER.INFO.%s.%s" .stream .name)
    (printf "$JS.API.CONSUMER.MSG.NEXT.%s.%s" .stream .name)
    (printf "$JS.ACK.%s.%s.>" .stream .name)) -}}
{{- end -}}
{{- range $stream := $nats.ephemeral -}}
{{- $allow = concat $allow (list
    (printf "$JS.API.CONSUMER.CREATE.%s" $stream)
    (printf "$JS.API.CONSUMER.CREATE.%s.*" $stream)
    (printf "$JS.API.CONSUMER.CREATE.%s.*.>" $stream)
    (printf "$JS.API.CONSUMER.INFO.%s.*" $stream)
    (printf "$JS.API.CONSUMER.MSG.NEXT.%s.*" $stream)
    (printf "$JS.FC.%s.>" $stream)) -}}
{{- range $other := index $perms.durables $stream | default list -}}
{{- if ne $other $own -}}
{{- $deny = concat $deny (list
    (printf "$JS.API.CONSUMER.CREATE.%s.%s" $stream $other)
    (printf "$JS.API.CONSUMER.CREATE.%s.%s.>" $stream $other)
    (printf "$JS.API.CONSUMER.INFO.%s.%s" $stream $other)
    (printf "$JS.API.CONSUMER.MSG.NEXT.%s.%s" $stream $other)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $publish := dict "allow" $allow -}}
{{- if $deny -}}{{- $_ := set $publish "deny" $deny -}}{{- end -}}
{{- /* toJson escapes ">" as \u003e, which NATS configuration does not read. */ -}}
{{- /* Each service connects with inbox prefix `_INBOX_<service>` (bus.connection.inbox_prefix). */ -}}
{{- $subscribe := dict "allow" (list (printf "_INBOX_%s.>" .name)) -}}
{{- dict "publish" $publish "subscribe" $subscribe | toJson | replace "\\u003e" ">" -}}
{{- end -}}

{{/* The `authorization` block of nats.conf: one user per service. */}}
{{- define "substratus.natsAuthorization" -}}
authorization {
  users: [
{{- range $name, $_ := .Values.services }}
    {user: {{ $name | quote }}, password: ${{ include "substratus.natsPasswordVar" $name }}, permissions: {{ include "substratus.natsPermissions" (dict "root" $ "name" $name) }}}
{{- end }}
  ]
}
{{- end -}}

{{- define "substratus.image" -}}
{{- printf "%s/substratus-%s:%s" .root.Values.image.repository .name (.root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
