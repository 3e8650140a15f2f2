package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The lean path: a pod CREATE review is read (leanjson.go: one validating pass, then straight to
// the members Mutate reads, without reflection) into only what Mutate reads, with each container
// kept as the JSON the API server sent; the patch restates those containers by adding the new env
// entries and mount into that JSON instead of re-encoding decoded containers. The API server
// encodes the object with the same Go types and encoding/json as the upstream re-encodes them, so
// for every container whose fields k8s.io/api knows the patch is byte for byte the one Mutate and
// PatchJSON produce (TestLeanPathMatchesMutate checks it); fields this build does not know are
// kept rather than dropped. Anything unexpected (another kind, a body that is not compact JSON, a
// member of another type or given twice) falls back to the full decode.

// rawContainer is a container's JSON and the fields of it Mutate reads.
type rawContainer struct {
	raw  []byte
	lean corev1.Container
}

// parseContainer keeps a container's JSON (a part of the review's body, not copied) and reads its
// name, the names of its env entries and volume mounts (all Mutate reads of them: the patch keeps
// the entries as sent and appends the new ones), and the user settings of its securityContext.
func (d *leanDoc) parseContainer(raw []byte) (rawContainer, bool) {
	c := rawContainer{raw: raw}
	f, ok := d.fields(raw, "name", "env", "volumeMounts", "securityContext")
	if !ok {
		return c, false
	}
	if c.lean.Name, ok = leanString(f[0]); !ok {
		return c, false
	}
	env, ok := d.names(f[1])
	if !ok {
		return c, false
	}
	if env != nil {
		c.lean.Env = make([]corev1.EnvVar, len(env))
		for i, n := range env {
			c.lean.Env[i].Name = n
		}
	}
	mounts, ok := d.names(f[2])
	if !ok {
		return c, false
	}
	if mounts != nil {
		c.lean.VolumeMounts = make([]corev1.VolumeMount, len(mounts))
		for i, n := range mounts {
			c.lean.VolumeMounts[i].Name = n
		}
	}
	if f[3] != nil {
		sc, ok := d.fields(f[3], "runAsUser", "runAsNonRoot")
		if !ok {
			return c, false
		}
		c.lean.SecurityContext = &corev1.SecurityContext{}
		if c.lean.SecurityContext.RunAsUser, ok = leanInt64(sc[0]); !ok {
			return c, false
		}
		if c.lean.SecurityContext.RunAsNonRoot, ok = leanBool(sc[1]); !ok {
			return c, false
		}
	}
	return c, true
}

// leanContainers are the raw containers of a lean pod, by patch path.
type leanContainers map[string][]rawContainer

// parseContainers reads a JSON array of containers (nil for nil).
func (d *leanDoc) parseContainers(v []byte) ([]rawContainer, bool) {
	elems, ok := d.array(v)
	if !ok || elems == nil {
		return nil, ok
	}
	out := make([]rawContainer, len(elems))
	for i, e := range elems {
		if out[i], ok = d.parseContainer(e); !ok {
			return nil, false
		}
	}
	return out, true
}

// decodeLean reads a pod CREATE review, without reflection, into only what Mutate reads (the
// pod's env entries and volume mounts by name only); ok is false when the body is anything else
// or anything the readers of leanjson.go do not take (the caller then decodes it fully, with the
// full decoder's checks and messages).
func decodeLean(data []byte) (review *admissionv1.AdmissionReview, pod *corev1.Pod, raws leanContainers, ok bool) {
	d, ok := validCompact(data)
	if !ok {
		return nil, nil, nil, false
	}
	top, ok := d.fields(d.data, "kind", "apiVersion", "request")
	if !ok || top[2] == nil {
		return nil, nil, nil, false
	}
	kind, ok1 := leanString(top[0])
	apiVersion, ok2 := leanString(top[1])
	if !ok1 || !ok2 || kind != "AdmissionReview" || (apiVersion != "admission.k8s.io/v1" && apiVersion != "admission.k8s.io/v1beta1") {
		return nil, nil, nil, false
	}
	rf, ok := d.fields(top[2], "uid", "kind", "subResource", "namespace", "operation", "dryRun", "object")
	if !ok || rf[1] == nil || rf[6] == nil {
		return nil, nil, nil, false
	}
	req := &admissionv1.AdmissionRequest{}
	strs := []*string{(*string)(&req.UID), nil, &req.SubResource, &req.Namespace, (*string)(&req.Operation)}
	for i, dst := range strs {
		if dst != nil {
			if *dst, ok = leanString(rf[i]); !ok {
				return nil, nil, nil, false
			}
		}
	}
	gvk, ok := d.fields(rf[1], "group", "version", "kind")
	if !ok {
		return nil, nil, nil, false
	}
	for i, dst := range []*string{&req.Kind.Group, &req.Kind.Version, &req.Kind.Kind} {
		if *dst, ok = leanString(gvk[i]); !ok {
			return nil, nil, nil, false
		}
	}
	if req.DryRun, ok = leanBool(rf[5]); !ok {
		return nil, nil, nil, false
	}
	if req.UID == "" || req.Kind.Kind != "Pod" || req.Kind.Group != "" || req.SubResource != "" || req.Operation != admissionv1.Create {
		return nil, nil, nil, false
	}
	pod, raws, ok = d.decodeLeanPod(rf[6])
	if !ok {
		return nil, nil, nil, false
	}
	if req.Namespace != "" {
		pod.Namespace = req.Namespace
	}
	return &admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{Kind: kind, APIVersion: apiVersion}, Request: req}, pod, raws, true
}

// decodeLeanPod reads the part of a pod Mutate reads, containers kept as JSON.
func (d *leanDoc) decodeLeanPod(obj []byte) (*corev1.Pod, leanContainers, bool) {
	of, ok := d.fields(obj, "metadata", "spec")
	if !ok || of[1] == nil {
		return nil, nil, false
	}
	pod := &corev1.Pod{}
	if of[0] != nil {
		md, ok := d.fields(of[0], "name", "generateName", "namespace", "labels", "annotations")
		if !ok {
			return nil, nil, false
		}
		for i, dst := range []*string{&pod.Name, &pod.GenerateName, &pod.Namespace} {
			if *dst, ok = leanString(md[i]); !ok {
				return nil, nil, false
			}
		}
		if pod.Labels, ok = leanStringMap(md[3]); !ok {
			return nil, nil, false
		}
		if pod.Annotations, ok = leanStringMap(md[4]); !ok {
			return nil, nil, false
		}
	}
	sf, ok := d.fields(of[1], "serviceAccountName", "nodeSelector", "securityContext", "volumes", "initContainers", "containers")
	if !ok || sf[5] == nil {
		return nil, nil, false
	}
	spec := &pod.Spec
	if spec.ServiceAccountName, ok = leanString(sf[0]); !ok {
		return nil, nil, false
	}
	if spec.NodeSelector, ok = leanStringMap(sf[1]); !ok {
		return nil, nil, false
	}
	if sf[2] != nil {
		sc, ok := d.fields(sf[2], "runAsUser", "runAsNonRoot", "fsGroup")
		if !ok {
			return nil, nil, false
		}
		spec.SecurityContext = &corev1.PodSecurityContext{}
		if spec.SecurityContext.RunAsUser, ok = leanInt64(sc[0]); !ok {
			return nil, nil, false
		}
		if spec.SecurityContext.RunAsNonRoot, ok = leanBool(sc[1]); !ok {
			return nil, nil, false
		}
		if spec.SecurityContext.FSGroup, ok = leanInt64(sc[2]); !ok {
			return nil, nil, false
		}
	}
	volumes, ok := d.names(sf[3])
	if !ok {
		return nil, nil, false
	}
	if volumes != nil {
		spec.Volumes = make([]corev1.Volume, len(volumes))
		for i, n := range volumes {
			spec.Volumes[i].Name = n
		}
	}
	initContainers, ok := d.parseContainers(sf[4])
	if !ok {
		return nil, nil, false
	}
	containers, ok := d.parseContainers(sf[5])
	if !ok {
		return nil, nil, false
	}
	spec.InitContainers = leanOf(initContainers)
	spec.Containers = leanOf(containers)
	return pod, leanContainers{"/spec/initContainers": initContainers, "/spec/containers": containers}, true
}

func leanOf(cs []rawContainer) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i := range cs {
		out[i] = cs[i].lean
	}
	return out
}

// encodeReview writes the AdmissionReview answer as json.Marshal does, without reflection for
// what the handler sets (uid, allowed, patch, patchType); anything else goes through json.Marshal.
func encodeReview(tm metav1.TypeMeta, resp *admissionv1.AdmissionResponse) ([]byte, error) {
	if resp.Result != nil || len(resp.AuditAnnotations) > 0 || len(resp.Warnings) > 0 || (resp.PatchType != nil) != (resp.Patch != nil) {
		return json.Marshal(admissionv1.AdmissionReview{TypeMeta: tm, Response: resp})
	}
	out := make([]byte, 0, 256+len(tm.Kind)+len(tm.APIVersion)+len(resp.UID)+base64.StdEncoding.EncodedLen(len(resp.Patch)))
	quote := func(field, v string) {
		out = append(out, '"')
		out = append(out, field...)
		out = append(out, `":`...)
		out = appendJSONString(out, v)
		out = append(out, ',')
	}
	out = append(out, '{')
	if tm.Kind != "" {
		quote("kind", tm.Kind)
	}
	if tm.APIVersion != "" {
		quote("apiVersion", tm.APIVersion)
	}
	out = append(out, `"response":{`...)
	quote("uid", string(resp.UID))
	out = strconv.AppendBool(append(out, `"allowed":`...), resp.Allowed)
	if resp.Patch != nil {
		out = append(out, `,"patch":"`...)
		out = base64.StdEncoding.AppendEncode(out, resp.Patch)
		out = append(out, '"')
		out = append(out, `,"patchType":`...)
		out = appendJSONString(out, string(*resp.PatchType))
	}
	return append(out, '}', '}'), nil
}

// appendJSONString appends v as a JSON string, as json.Marshal writes it.
func appendJSONString(out []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(v) // a string always encodes
			return append(out, b...)
		}
	}
	out = append(out, '"')
	out = append(out, v...)
	return append(out, '"')
}

// leanEncoder writes a lean path mutation's patch; when the containers' JSON cannot be restated
// exactly it decodes the whole review and runs Mutate again on the full pod.
func leanEncoder(data []byte, raws leanContainers) func(*Mutation) ([]byte, error) {
	return func(m *Mutation) ([]byte, error) {
		if b, err := raws.patchJSON(m); err == nil {
			return b, nil
		}
		_, full, err := decodeReview(data)
		if err == nil && full == nil {
			err = errors.New("not a pod CREATE")
		}
		if err != nil {
			return nil, fmt.Errorf("webhook: decoding the pod: %w", err)
		}
		if m, err = Mutate(full, m.sa, m.cfg); err != nil {
			return nil, err
		}
		return m.PatchJSON()
	}
}

var errLeanPatch = errors.New("webhook: the lean patch does not apply to these containers")

// patchJSON renders m's patch like PatchJSON, writing each restated container as its original
// JSON plus the env entries and mount Mutate appended.
func (raws leanContainers) patchJSON(m *Mutation) ([]byte, error) {
	var buf bytes.Buffer
	size := 1024
	for _, cs := range raws {
		for _, c := range cs {
			size += len(c.raw) + 512
		}
	}
	buf.Grow(size)
	buf.WriteByte('[')
	for i, op := range m.Patch {
		if i > 0 {
			buf.WriteByte(',')
		}
		orig, restated := raws[op.Path]
		if !restated {
			b, err := appendOperationJSON(buf.AvailableBuffer(), op)
			if err != nil {
				return nil, err
			}
			buf.Write(b)
			continue
		}
		mutated, ok := op.Value.([]corev1.Container)
		if op.Op != "add" || !ok || len(mutated) != len(orig) {
			return nil, errLeanPatch
		}
		buf.WriteString(`{"op":"add","path":`)
		buf.Write(appendJSONString(buf.AvailableBuffer(), op.Path))
		buf.WriteString(`,"value":[`)
		for j := range orig {
			if j > 0 {
				buf.WriteByte(',')
			}
			before, after := &orig[j].lean, &mutated[j]
			if len(after.Env) < len(before.Env) || len(after.VolumeMounts) < len(before.VolumeMounts) {
				return nil, errLeanPatch
			}
			b, err := spliceContainer(orig[j].raw, after.Env[len(before.Env):], after.VolumeMounts[len(before.VolumeMounts):])
			if err != nil {
				return nil, err
			}
			buf.Write(b)
		}
		buf.WriteString("]}")
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// containerFieldOrder is the position of each JSON field of corev1.Container: where encoding/json
// writes it, and so where an absent env or volumeMounts member goes.
var containerFieldOrder = sync.OnceValue(func() map[string]int {
	t := reflect.TypeFor[corev1.Container]()
	order := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		order[name] = i
	}
	return order
})

// spliceContainer appends env entries and volume mounts to a container's compact JSON object,
// creating the members at encoding/json's position when absent.
func spliceContainer(raw []byte, env []corev1.EnvVar, mounts []corev1.VolumeMount) ([]byte, error) {
	if len(env) == 0 && len(mounts) == 0 {
		return raw, nil
	}
	members, err := objectMembers(raw)
	if err != nil {
		return nil, err
	}
	order := containerFieldOrder()
	last := -1
	for _, m := range members { // in encoding/json's order, once each, or the insertion points are unknown
		o, known := order[m.key]
		if !known && (strings.EqualFold(m.key, "env") || strings.EqualFold(m.key, "volumeMounts")) {
			return nil, errLeanPatch // decoded case-insensitively, but not where we would splice
		}
		if known {
			if o <= last {
				return nil, errLeanPatch
			}
			last = o
		}
	}
	type insertion struct {
		key   string
		items []byte
	}
	var adds []insertion
	if len(env) > 0 {
		b, err := appendEnvJSON(nil, env)
		if err != nil {
			return nil, err
		}
		adds = append(adds, insertion{"env", b})
	}
	if len(mounts) > 0 {
		b, err := appendMountsJSON(nil, mounts)
		if err != nil {
			return nil, err
		}
		adds = append(adds, insertion{"volumeMounts", b})
	}
	out := make([]byte, 0, len(raw)+256)
	pos := 0 // raw[:pos] is in out
	for _, a := range adds {
		idx := -1
		for i, m := range members {
			if m.key == a.key {
				idx = i
				break
			}
		}
		if idx >= 0 { // an array: append before its closing bracket
			m := members[idx]
			if raw[m.valueEnd-1] != ']' || raw[m.valueStart] != '[' || m.valueEnd-1 < pos {
				return nil, errLeanPatch
			}
			out = append(out, raw[pos:m.valueEnd-1]...)
			if m.valueEnd-m.valueStart > 2 {
				out = append(out, ',')
			}
			out = append(out, a.items...)
			pos = m.valueEnd - 1
			continue
		}
		// Absent: before the first member encoding/json writes after it, else at the end.
		at, comma := len(raw)-1, len(members) > 0
		for _, m := range members {
			if o, known := order[m.key]; known && o > order[a.key] {
				at, comma = m.keyStart, false
				break
			}
		}
		if at < pos {
			return nil, errLeanPatch
		}
		out = append(out, raw[pos:at]...)
		if comma {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, a.key...)
		out = append(out, `":[`...)
		out = append(out, a.items...)
		out = append(out, ']')
		if !comma {
			out = append(out, ',')
		}
		pos = at
	}
	return append(out, raw[pos:]...), nil
}

// member is one top-level member of a JSON object: its key and where its key and value are.
type member struct {
	key                            string
	keyStart, valueStart, valueEnd int
}

// objectMembers lists the members of a compact JSON object (as encoding/json writes it: no
// whitespace outside strings).
func objectMembers(raw []byte) ([]member, error) {
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return nil, errLeanPatch
	}
	out := make([]member, 0, 16)
	i := 1
	for i < len(raw)-1 {
		if raw[i] == ',' && len(out) > 0 {
			i++
		}
		keyStart := i
		end, err := skipString(raw, i)
		if err != nil {
			return nil, err
		}
		if end >= len(raw) || raw[end] != ':' {
			return nil, errLeanPatch
		}
		key, err := unquote(raw[keyStart:end])
		if err != nil {
			return nil, errLeanPatch
		}
		valueStart := end + 1
		valueEnd, err := skipValue(raw, valueStart)
		if err != nil {
			return nil, err
		}
		out = append(out, member{key: key, keyStart: keyStart, valueStart: valueStart, valueEnd: valueEnd})
		i = valueEnd
	}
	if i != len(raw)-1 {
		return nil, errLeanPatch
	}
	return out, nil
}

// skipString returns the index after the JSON string starting at raw[i].
func skipString(raw []byte, i int) (int, error) {
	if i >= len(raw) || raw[i] != '"' {
		return 0, errLeanPatch
	}
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errLeanPatch
}

// skipValue returns the index after the compact JSON value starting at raw[i].
func skipValue(raw []byte, i int) (int, error) {
	if i >= len(raw) {
		return 0, errLeanPatch
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		depth := 0
		for ; i < len(raw); i++ {
			switch raw[i] {
			case '"':
				end, err := skipString(raw, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errLeanPatch
	case ' ', '\t', '\n', '\r', ',', '}', ']', ':':
		return 0, errLeanPatch
	default: // number, true, false, null
		for j := i; j < len(raw); j++ {
			if c := raw[j]; c == ',' || c == '}' || c == ']' {
				return j, nil
			}
		}
		return 0, errLeanPatch
	}
}
