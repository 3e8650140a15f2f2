package webhook

import (
	"encoding/json"
	"fmt"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ekslink/ekslink/envtest"
)

// reviewOf is a pod CREATE AdmissionReview as the API server writes it: the object encoded by
// encoding/json from the Go types.
func reviewOf(t *testing.T, pod *corev1.Pod) []byte {
	t.Helper()
	obj, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Appendf(nil, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"0000-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":%q,"operation":"CREATE","object":%s,"dryRun":false}}`, pod.Namespace, obj)
}

// leanPatch is the patch the handler's lean path writes for pod ("" for none).
func leanPatch(t *testing.T, pod *corev1.Pod, sa *corev1.ServiceAccount, cfg Config) string {
	t.Helper()
	_, lp, raws, ok := decodeLean(reviewOf(t, pod))
	if !ok {
		t.Fatal("the lean path refused a pod CREATE review")
	}
	m, err := Mutate(lp, sa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Patch == nil {
		return ""
	}
	b, err := raws.patchJSON(m)
	if err != nil {
		t.Fatalf("lean patch: %v", err)
	}
	return string(b)
}

// The lean path's patch equals Mutate + PatchJSON on the fully decoded pod (TestMutate checks the
// upstream's cases; these are pods with every kind of container field around the added members).
func TestLeanPathMatchesMutate(t *testing.T) {
	boolp := func(v bool) *bool { return &v }
	int64p := func(v int64) *int64 { return &v }
	full := corev1.Container{
		Name: "full", Image: "public.ecr.aws/x/y:1", Command: []string{"sh", "-c", `echo "<a> & \u00e9 \\ done"`}, Args: []string{"--x=1"},
		WorkingDir: "/w", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		EnvFrom:                []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
		Env:                    []corev1.EnvVar{{Name: "A", Value: `q"uote`}, {Name: "B", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		Resources:              corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}, Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
		VolumeMounts:           []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
		LivenessProbe:          &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}, PeriodSeconds: 10},
		ReadinessProbe:         &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
		TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile, ImagePullPolicy: corev1.PullIfNotPresent,
		SecurityContext: &corev1.SecurityContext{RunAsNonRoot: boolp(true), RunAsUser: int64p(1000)}, Stdin: true, TTY: true,
	}
	bare := corev1.Container{Name: "bare", Image: "img"}
	noEnvMounts := corev1.Container{Name: "probes", Image: "img", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
		StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}, ImagePullPolicy: corev1.PullAlways}
	mountsOnly := corev1.Container{Name: "mounts", Image: "img", VolumeMounts: []corev1.VolumeMount{{Name: "x", MountPath: "/x", ReadOnly: true}}}
	already := corev1.Container{Name: "already", Image: "img", Env: []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: "r"}, {Name: "AWS_REGION", Value: "x"}, {Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"}},
		VolumeMounts: []corev1.VolumeMount{{Name: "aws-iam-token", MountPath: "/elsewhere"}}}
	pod := func(mods ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "apps", Labels: map[string]string{"app": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{}}`)}}},
			Spec: corev1.PodSpec{ServiceAccountName: "reader", Containers: []corev1.Container{full, bare, noEnvMounts, mountsOnly, already},
				InitContainers: []corev1.Container{bare, full},
				Volumes:        []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}}}
		for _, m := range mods {
			m(p)
		}
		return p
	}
	irsa := testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/token-expiration", "3600")
	for name, c := range map[string]struct {
		pod *corev1.Pod
		sa  *corev1.ServiceAccount
		cfg Config
	}{
		"IRSA, every field":                      {pod(), irsa, Config{Region: "eu-west-1", RegionalSTS: true}},
		"IRSA, no region":                        {pod(), irsa, Config{}},
		"IRSA, windows, skip-containers":         {pod(withNodeSelector("kubernetes.io/os", "windows"), withPodAnnotation("eks.amazonaws.com/skip-containers", "bare,probes")), irsa, Config{}},
		"IRSA, no volumes, fsGroup":              {pod(func(p *corev1.Pod) { p.Spec.Volumes = nil }), irsa, Config{FSGroup: 2000}},
		"container credentials, no labels":       {pod(func(p *corev1.Pod) { p.Labels = nil }), testSA(), Config{Identities: ccIdentities, Rand: zeroRand}},
		"container credentials, labels, fsGroup": {pod(func(p *corev1.Pod) { p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: int64p(5)} }), testSA(), Config{Identities: ccIdentities, Rand: zeroRand, FSGroup: 7}},
		"not configured":                         {pod(), testSA(), Config{}},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := Mutate(c.pod, c.sa, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			want, err := m.PatchJSON()
			if err != nil {
				t.Fatal(err)
			}
			if got := leanPatch(t, c.pod, c.sa, c.cfg); got != string(want) {
				t.Errorf("lean path:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// Reviews the lean path does not take, or cannot restate, go through the full decode: the
// handler's answer is the same.
func TestLeanPathFallsBack(t *testing.T) {
	if _, _, _, ok := decodeLean([]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"name": "spaced"}]}}}}`)); ok {
		t.Error("a container that is not compact JSON took the lean path")
	}
	if _, _, _, ok := decodeLean([]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","object":{"spec":{"replicas":1}}}}`)); ok {
		t.Error("a Deployment took the lean path")
	}
	// Members out of encoding/json's order cannot be spliced: the handler re-runs Mutate on the
	// fully decoded pod.
	for _, raw := range []string{`{"volumeMounts":[],"name":"x"}`, `{"name":"x","env":[],"env":[]}`, `{"name":"x","Env":[{"name":"B"}]}`} {
		if _, err := spliceContainer([]byte(raw), []corev1.EnvVar{{Name: "A"}}, nil); err == nil {
			t.Errorf("spliced %s (out of order, duplicate or differently cased members)", raw)
		}
	}
	body := []byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"apps","operation":"CREATE","object":{"metadata":{"name":"app","namespace":"apps"},"spec":{"serviceAccountName":"reader","containers":[{"volumeMounts":[{"name":"d","mountPath":"/d"}],"name":"main","image":"i"}]}}}}`)
	_, lp, raws, ok := decodeLean(body)
	if !ok {
		t.Fatal("not lean")
	}
	sa := testSA("eks.amazonaws.com/role-arn", testARN)
	m, err := Mutate(lp, sa, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raws.patchJSON(m); err == nil {
		t.Fatal("the out-of-order container was spliced")
	}
	m.sa, m.cfg = sa, Config{}
	got, err := leanEncoder(body, raws)(m)
	if err != nil {
		t.Fatal(err)
	}
	_, fullPod, err := decodeReview(body)
	if err != nil {
		t.Fatal(err)
	}
	fm, err := Mutate(fullPod, sa, Config{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fm.PatchJSON()
	if string(got) != string(want) {
		t.Errorf("fallback patch:\n got %s\nwant %s", got, want)
	}
}

// encodeReview writes what json.Marshal writes for the answers the handler gives.
func TestEncodeReviewMatchesJSONMarshal(t *testing.T) {
	pt := admissionv1.PatchTypeJSONPatch
	for _, c := range []struct {
		tm   metav1.TypeMeta
		resp admissionv1.AdmissionResponse
	}{
		{metav1.TypeMeta{Kind: "AdmissionReview", APIVersion: "admission.k8s.io/v1"}, admissionv1.AdmissionResponse{UID: "9ca5b9d7-<&>", Allowed: true}},
		{metav1.TypeMeta{Kind: "AdmissionReview", APIVersion: "admission.k8s.io/v1beta1"}, admissionv1.AdmissionResponse{UID: "u", Allowed: true, Patch: []byte(`[{"op":"add"}]`), PatchType: &pt}},
		{metav1.TypeMeta{}, admissionv1.AdmissionResponse{UID: "u", Allowed: false}},
		{metav1.TypeMeta{Kind: "AdmissionReview"}, admissionv1.AdmissionResponse{UID: "u", Allowed: true, Warnings: []string{"w"}}},
	} {
		want, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: c.tm, Response: &c.resp})
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeReview(c.tm, &c.resp)
		if err != nil || string(got) != string(want) {
			t.Errorf("encodeReview:\n got %s (%v)\nwant %s", got, err, want)
		}
	}
}

// On the AdmissionReview the real API server sends (defaults, managedFields, the kube-api-access
// volume, a trailing newline), the lean path writes the full path's patch.
func TestLeanPathOnTheAPIServersReview(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	createSA(t, env, ns, "web", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	body := captureReview(t, env, ns, loadPod(ns, "web"))
	sa := testSA("eks.amazonaws.com/role-arn", testARN)
	cfg := Config{Region: "us-west-2", RegionalSTS: true}
	_, lp, raws, ok := decodeLean(body)
	if !ok {
		t.Fatal("the API server's review did not take the lean path")
	}
	lm, err := Mutate(lp, sa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := raws.patchJSON(lm)
	if err != nil {
		t.Fatal(err)
	}
	_, full, err := decodeReview(body)
	if err != nil {
		t.Fatal(err)
	}
	fm, err := Mutate(full, sa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fm.PatchJSON()
	if string(got) != string(want) {
		t.Errorf("lean path:\n got %s\nwant %s", got, want)
	}
}
