package webhook

import (
	"encoding/json"
	"reflect"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// The values patch() adds, written as json.Marshal writes them without its reflection: the env
// entries, the token mount and the projected token volume. Anything else goes through
// json.Marshal (TestLeanPathMatchesMutate compares the lean patch with PatchJSON's byte for byte).

// appendEnvJSON appends the env entries, comma-separated, without the brackets.
func appendEnvJSON(out []byte, env []corev1.EnvVar) ([]byte, error) {
	for i, e := range env {
		if i > 0 {
			out = append(out, ',')
		}
		if e.ValueFrom != nil {
			b, err := json.Marshal(e)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
			continue
		}
		out = appendJSONString(append(out, `{"name":`...), e.Name)
		if e.Value != "" {
			out = appendJSONString(append(out, `,"value":`...), e.Value)
		}
		out = append(out, '}')
	}
	return out, nil
}

// appendMountsJSON appends the volume mounts, comma-separated, without the brackets.
func appendMountsJSON(out []byte, mounts []corev1.VolumeMount) ([]byte, error) {
	for i, m := range mounts {
		if i > 0 {
			out = append(out, ',')
		}
		rest := m
		rest.Name, rest.ReadOnly, rest.MountPath = "", false, ""
		if !reflect.ValueOf(rest).IsZero() {
			b, err := json.Marshal(m)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
			continue
		}
		out = appendJSONString(append(out, `{"name":`...), m.Name)
		if m.ReadOnly {
			out = append(out, `,"readOnly":true`...)
		}
		out = appendJSONString(append(out, `,"mountPath":`...), m.MountPath)
		out = append(out, '}')
	}
	return out, nil
}

// appendOperationJSON appends a patch operation whose value is not a restated container list.
func appendOperationJSON(out []byte, op PatchOperation) ([]byte, error) {
	vol, ok := op.Value.(corev1.Volume)
	if !ok {
		b, err := json.Marshal(op)
		return append(out, b...), err
	}
	p := vol.Projected
	if p == nil || p.DefaultMode != nil || len(p.Sources) != 1 || vol.VolumeSource != (corev1.VolumeSource{Projected: p}) {
		b, err := json.Marshal(op)
		return append(out, b...), err
	}
	t := p.Sources[0].ServiceAccountToken
	if t == nil || p.Sources[0] != (corev1.VolumeProjection{ServiceAccountToken: t}) {
		b, err := json.Marshal(op)
		return append(out, b...), err
	}
	out = appendJSONString(append(out, `{"op":`...), op.Op)
	out = appendJSONString(append(out, `,"path":`...), op.Path)
	out = appendJSONString(append(out, `,"value":{"name":`...), vol.Name)
	out = append(out, `,"projected":{"sources":[{"serviceAccountToken":{`...)
	if t.Audience != "" {
		out = appendJSONString(append(out, `"audience":`...), t.Audience)
		out = append(out, ',')
	}
	if t.ExpirationSeconds != nil {
		out = strconv.AppendInt(append(out, `"expirationSeconds":`...), *t.ExpirationSeconds, 10)
		out = append(out, ',')
	}
	out = appendJSONString(append(out, `"path":`...), t.Path)
	return append(out, `}}]}}}`...), nil
}
