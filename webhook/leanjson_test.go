package webhook

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// validCompact never accepts what encoding/json refuses (the lean path would answer a body the
// full decode rejects with 400), and accepts the compact JSON encoding/json writes.
func TestValidCompactImpliesJSONValid(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{`{}`, true}, {`[]`, true}, {` {"a":1}` + "\n", true}, {`{"a":[1,-0.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"]}`, true},
		{"\u00a0{}", false}, {"{}\u0085", false}, {"\v{}", false}, // not JSON whitespace (bytes.TrimSpace would trim them)
		{`"\u00E9"`, true}, {`0`, true}, {`-0`, true}, {`1E5`, true}, {`{"a":{"b":[[],{}]}}`, true}, {"\"\xff\"", true},
		{`{"a": 1}`, false}, {`[1, 2]`, false}, // whitespace inside: refused (encoding/json accepts it; the full decode reads it)
		{``, false}, {`{`, false}, {`{"a"}`, false}, {`{"a":}`, false}, {`{"a":1,}`, false}, {`[1,]`, false}, {`{a:1}`, false},
		{`01`, false}, {`1.`, false}, {`.5`, false}, {`-`, false}, {`1e`, false}, {`1e+`, false}, {`+1`, false}, {`0x1`, false},
		{`tru`, false}, {`truee`, false}, {`nul`, false}, {`"\x"`, false}, {`"\u12g4"`, false}, {`"\u12"`, false}, {"\"a\tb\"", false},
		{`"abc`, false}, {`{"a":1}}`, false}, {`{"a":1} {}`, false}, {`[1}`, false}, {`{"a":1]`, false},
		{strings.Repeat("[", maxLeanDepth+1) + strings.Repeat("]", maxLeanDepth+1), false},
	} {
		_, got := validCompact([]byte(c.in))
		if got != c.want {
			t.Errorf("validCompact(%q) = %v, want %v", c.in, got, c.want)
		}
		if got && !json.Valid([]byte(c.in)) {
			t.Errorf("validCompact accepted %q, which encoding/json refuses", c.in)
		}
	}

	// Every one-byte change of real reviews: whatever validCompact accepts, encoding/json does.
	bodies := [][]byte{reviewOf(t, loadPod("apps", "web")), reviewOf(t, testPod(withEnv("A", `q"<&>é`)))}
	for _, b := range bodies {
		if _, ok := validCompact(b); !ok {
			t.Fatalf("validCompact refused encoding/json's output %s", b)
		}
	}
	rnd := rand.New(rand.NewPCG(17, 2026))
	alphabet := []byte(`{}[]:,"\ 0123456789-+.eEtrufalsn` + "\t\n\x00\x1f\xff")
	for range 50000 {
		b := []byte(string(bodies[rnd.IntN(len(bodies))]))
		i := rnd.IntN(len(b))
		switch rnd.IntN(3) {
		case 0:
			b = append(b[:i], b[i+1:]...)
		case 1:
			b = append(b[:i], append([]byte{alphabet[rnd.IntN(len(alphabet))]}, b[i:]...)...)
		default:
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		if _, ok := validCompact(b); ok && !json.Valid(b) {
			t.Fatalf("validCompact accepted invalid JSON %q", b)
		}
	}
}

func FuzzValidCompact(f *testing.F) {
	f.Add([]byte(`{"a":[1,-0.5e+3,true,false,null,"x\"\\\u00e9"]}`))
	f.Add([]byte(`{"kind":"AdmissionReview","request":{"object":{"spec":{"containers":[{"name":"a"}]}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, ok := validCompact(b); ok && !json.Valid(b) {
			t.Fatalf("validCompact accepted invalid JSON %q", b)
		}
	})
}

// leanView is what Mutate reads of a pod, as the lean path decodes it (env entries and volume
// mounts by name).
func leanView(p *corev1.Pod) any {
	type container struct {
		Name           string
		Env, Mounts    []string
		User           *int64
		NonRoot        *bool
		SecurityCtxSet bool
	}
	cs := func(in []corev1.Container) (out []container) {
		for _, c := range in {
			v := container{Name: c.Name, SecurityCtxSet: c.SecurityContext != nil}
			for _, e := range c.Env {
				v.Env = append(v.Env, e.Name)
			}
			for _, m := range c.VolumeMounts {
				v.Mounts = append(v.Mounts, m.Name)
			}
			if c.SecurityContext != nil {
				v.User, v.NonRoot = c.SecurityContext.RunAsUser, c.SecurityContext.RunAsNonRoot
			}
			out = append(out, v)
		}
		return out
	}
	var volumes []string
	for _, v := range p.Spec.Volumes {
		volumes = append(volumes, v.Name)
	}
	var psc []any
	if sc := p.Spec.SecurityContext; sc != nil {
		psc = []any{sc.RunAsUser, sc.RunAsNonRoot, sc.FSGroup}
	}
	return []any{p.Name, p.GenerateName, p.Namespace, p.Labels, p.Labels == nil, p.Annotations, p.Annotations == nil,
		p.Spec.ServiceAccountName, p.Spec.NodeSelector, psc, volumes, p.Spec.Volumes == nil,
		cs(p.Spec.InitContainers), cs(p.Spec.Containers), p.Spec.Containers == nil}
}

const leanReviewPrefix = `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"apps","operation":"CREATE","object":`

// What the lean path reads of a review is what encoding/json reads: keys matched without regard
// to case, null as absent, escapes decoded; and what it does not take (duplicates, which
// encoding/json merges or overwrites; other types; whitespace) goes to the full decode.
func TestDecodeLeanReadsWhatEncodingJSONReads(t *testing.T) {
	for _, obj := range []string{
		`{"metadata":{"name":"app","labels":{"a":"b"},"annotations":{}},"spec":{"serviceAccountName":"web","containers":[{"name":"main","env":[{"name":"A","value":"x"},{"name":"B","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],"volumeMounts":[{"name":"d","mountPath":"/d"}]}]}}`,
		`{"Metadata":{"NAME":"app","GenerateName":"app-","Labels":null},"SPEC":{"ServiceAccountName":"web","NodeSelector":{"kubernetes.io/os":"windows"},"Containers":[{"Name":"main","Env":null,"VolumeMounts":[]}],"initContainers":null}}`,
		`{"metadata":{"name":"\u0061pp","annotations":{"eks.amazonaws.com/skip-containers":"a,\"b\"","\u00e9":"\u00e9"}},"spec":{"serviceAccountName":"w\u0065b","containers":[{"name":"m\u00e9"}]}}`,
		`{"metadata":{"name":"app"},"spec":{"securityContext":{"runAsUser":1000,"runAsNonRoot":true,"fsGroup":null},"volumes":[{"name":"v","emptyDir":{}}],"containers":[{"name":"main","securityContext":{"runAsUser":0,"runAsNonRoot":false,"privileged":false}}],"initContainers":[]}}`,
		`{"metadata":{"name":"app"},"spec":{"securityContext":{},"volumes":[],"containers":[]}}`,
		`{"metadata":{"name":"app","namespace":"other"},"spec":{"containers":[{"name":"main","unknownField":{"x":[1,2]}}]},"status":{}}`,
	} {
		body := []byte(leanReviewPrefix + obj + `}}` + "\n")
		_, lean, _, ok := decodeLean(body)
		if !ok {
			t.Errorf("the lean path refused %s", obj)
			continue
		}
		_, full, err := decodeReview(body)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := leanView(lean), leanView(full); !reflect.DeepEqual(got, want) {
			t.Errorf("lean path read %s\n got %#v\nwant %#v", obj, got, want)
		}
	}

	for _, obj := range []string{
		`{"metadata":{"name":"a"},"metadata":{"labels":{}},"spec":{"containers":[]}}`, // encoding/json merges both
		`{"spec":{"containers":[{"name":"a","Name":"b"}]}}`,
		`{"spec":{"containers":[{"name":"a","env":[{"name":"A","NAME":"B"}]}]}}`,
		`{"spec":{"serviceAccountName":5,"containers":[]}}`,
		`{"metadata":{"labels":{"a":1}},"spec":{"containers":[]}}`,
		`{"metadata":{"labels":{"a":null}},"spec":{"containers":[]}}`,
		`{"spec":{"containers":[{"name":"a","env":[null]}]}}`,
		`{"spec":{"containers":[{"name":"a","securityContext":{"runAsUser":1.5}}]}}`,
		`{"spec":{"containers":[{"name":"a","securityContext":{"runAsNonRoot":"yes"}}]}}`,
		`{"spec":{"volumes":[null],"containers":[]}}`,
		`{"spec":"nope"}`,
		`{"spec":{}}`,
		`{"spec":{"containers":[{"name": "spaced"}]}}`,
	} {
		body := []byte(leanReviewPrefix + obj + `}}`)
		if _, _, _, ok := decodeLean(body); ok {
			t.Errorf("the lean path took %s", obj)
		}
	}
	for _, body := range []string{
		`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","uid":"v","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[]}}}}`,
		`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"UPDATE","object":{"spec":{"containers":[]}}}}`,
		`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","dryRun":"no","object":{"spec":{"containers":[]}}}}`,
		`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":null}`,
		`["AdmissionReview"]`,
	} {
		if _, _, _, ok := decodeLean([]byte(body)); ok {
			t.Errorf("the lean path took %s", body)
		}
	}
}

// Whatever review the lean path takes, the full decode takes too, and reads the same pod.
func FuzzDecodeLean(f *testing.F) {
	f.Add([]byte(leanReviewPrefix + `{"metadata":{"name":"app","labels":{"a":"b"}},"spec":{"serviceAccountName":"web","securityContext":{"runAsUser":1},"volumes":[{"name":"v"}],"containers":[{"name":"main","env":[{"name":"A","value":"x"}],"volumeMounts":[{"name":"d","mountPath":"/d"}],"securityContext":{"runAsNonRoot":true}}]}}}}`))
	f.Add([]byte(leanReviewPrefix + `{"Metadata":{"NAME":"\u0061pp","annotations":null},"spec":{"containers":[{"name":"m\u00e9","Env":[]}],"initContainers":[{"name":"i"}]}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, lean, _, ok := decodeLean(body)
		if !ok {
			return
		}
		_, full, err := decodeReview(body)
		if err != nil || full == nil {
			t.Fatalf("the lean path took %q, which the full decode refuses (%v)", body, err)
		}
		if got, want := leanView(lean), leanView(full); !reflect.DeepEqual(got, want) {
			t.Fatalf("lean path read %q\n got %#v\nwant %#v", body, got, want)
		}
	})
}
