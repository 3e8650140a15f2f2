package webhook

import (
	"encoding/json"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The fixtures below are ours; each case names the upstream fixture or test whose behaviour it
// reproduces (aws/amazon-eks-pod-identity-webhook, pkg/handler/testdata/*.pod.yaml compared with
// pkg/handler/handler_pod_test.go TestUpdatePodSpec, byte for byte, as here).

const (
	testARN    = "arn:aws:iam::123456789012:role/reader"
	testImage  = "registry.example/app:1"
	irsaVolume = `{"name":"aws-iam-token","projected":{"sources":[{"serviceAccountToken":{"audience":"sts.amazonaws.com","expirationSeconds":86400,"path":"token"}}]}}`
	irsaMount  = `{"name":"aws-iam-token","readOnly":true,"mountPath":"/var/run/secrets/eks.amazonaws.com/serviceaccount"}`
	irsaEnv    = `{"name":"AWS_ROLE_ARN","value":"` + testARN + `"},{"name":"AWS_WEB_IDENTITY_TOKEN_FILE","value":"/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}`
	ccMount    = `{"name":"eks-pod-identity-token","readOnly":true,"mountPath":"/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"}`
	ccEnv      = `{"name":"AWS_CONTAINER_CREDENTIALS_FULL_URI","value":"http://169.254.170.23/v1/credentials"},{"name":"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE","value":"/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"}`
	ccLabel    = `{"op":"add","path":"/metadata/labels","value":{"eks.amazonaws.com/pod-identity":"enabled"}}`
)

func ccVolume(exp string) string {
	return `{"name":"eks-pod-identity-token","projected":{"sources":[{"serviceAccountToken":{"audience":"pods.eks.amazonaws.com","expirationSeconds":` + exp + `,"path":"eks-pod-identity-token"}}]}}`
}

func addVolumes(vol string) string {
	return `{"op":"add","path":"/spec/volumes","value":[` + vol + `]}`
}

func addContainers(cs ...string) string {
	return `{"op":"add","path":"/spec/containers","value":[` + join(cs) + `]}`
}

func container(name, env, mount string, extra ...string) string {
	s := `{"name":"` + name + `","image":"` + testImage + `"`
	if env != "" {
		s += `,"env":[` + env + `]`
	}
	s += `,"resources":{}`
	if mount != "" {
		s += `,"volumeMounts":[` + mount + `]`
	}
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

func join(parts []string) string {
	s := ""
	for i, p := range parts {
		if i > 0 {
			s += ","
		}
		s += p
	}
	return s
}

func patchOf(ops ...string) string { return "[" + join(ops) + "]" }

func env(name, value string) string { return `{"name":"` + name + `","value":"` + value + `"}` }

// testPod is pod "app" in namespace "apps" with service account "reader" and one container "main".
func testPod(mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "apps"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "reader",
			Containers:         []corev1.Container{{Name: "main", Image: testImage}},
		},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func testSA(annotations ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "apps", Annotations: map[string]string{}}}
	for i := 0; i+1 < len(annotations); i += 2 {
		sa.Annotations[annotations[i]] = annotations[i+1]
	}
	return sa
}

func withEnv(vars ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(vars); i += 2 {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: vars[i], Value: vars[i+1]})
		}
	}
}

func withPodAnnotation(k, v string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[k] = v
	}
}

func withNodeSelector(k, v string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{k: v} }
}

func zeroRand(int64) int64 { return 0 }

var ccIdentities = Identities{{Namespace: "apps", ServiceAccount: "reader"}: {}}

func TestMutate(t *testing.T) {
	annotated := testSA("eks.amazonaws.com/role-arn", testARN)
	int64p := func(v int64) *int64 { return &v }
	boolp := func(v bool) *bool { return &v }
	cases := []struct {
		name     string
		pod      *corev1.Pod
		sa       *corev1.ServiceAccount
		cfg      Config
		wantMode Mode
		want     string // the JSON patch, byte for byte; "" for none
	}{
		{
			// upstream TestMutatePod_MutationNotNeeded
			name: "service account without role-arn gets no patch",
			pod:  testPod(), sa: testSA(), wantMode: ModeNone,
		},
		{
			name: "missing service account gets no patch",
			pod:  testPod(), wantMode: ModeNone,
		},
		{
			// rawPodWithoutVolumes.pod.yaml
			name: "role-arn service account gets the volume, variables and mount",
			pod:  testPod(), sa: annotated, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// rawPodWithVolumes.pod.yaml
			name: "token volume is prepended to existing volumes",
			pod:  testPod(func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "data"}} }), sa: annotated, wantMode: ModeIRSA,
			want: patchOf(`{"op":"add","path":"/spec/volumes/0","value":`+irsaVolume+`}`, addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// rawPodNeedsRegion.pod.yaml
			name: "region flag adds AWS_DEFAULT_REGION and AWS_REGION",
			pod:  testPod(), sa: annotated, cfg: Config{Region: "eu-west-3"}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_DEFAULT_REGION", "eu-west-3")+","+env("AWS_REGION", "eu-west-3")+","+irsaEnv, irsaMount))),
		},
		{
			// rawPodRegionPresent.pod.yaml
			name: "a container's own region is kept and no other region is added",
			pod:  testPod(withEnv("AWS_REGION", "ap-south-1")), sa: annotated, cfg: Config{Region: "eu-west-3"}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", env("AWS_REGION", "ap-south-1")+","+irsaEnv, irsaMount))),
		},
		{
			// rawPodNeedsSTS.pod.yaml
			name: "regional STS flag adds AWS_STS_REGIONAL_ENDPOINTS first",
			pod:  testPod(), sa: annotated, cfg: Config{Region: "eu-west-3", RegionalSTS: true}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_STS_REGIONAL_ENDPOINTS", "regional")+","+env("AWS_DEFAULT_REGION", "eu-west-3")+","+env("AWS_REGION", "eu-west-3")+","+irsaEnv, irsaMount))),
		},
		{
			// rawPodNoSTSAnnotationOverride.pod.yaml
			name: "service account sts-regional-endpoints=false overrides the flag",
			pod:  testPod(), sa: testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/sts-regional-endpoints", "false"),
			cfg: Config{RegionalSTS: true}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// README "AWS_STS_REGIONAL_ENDPOINTS Injection": the annotation alone enables it
			name: "service account sts-regional-endpoints=true without the flag",
			pod:  testPod(), sa: testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/sts-regional-endpoints", "true"), wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", env("AWS_STS_REGIONAL_ENDPOINTS", "regional")+","+irsaEnv, irsaMount))),
		},
		{
			// rawPodHasAll.pod.yaml
			name: "container already configured is left alone but the volume is still added",
			pod:  testPod(withEnv("AWS_REGION", "ap-south-1", "AWS_STS_REGIONAL_ENDPOINTS", "regional", "AWS_ROLE_ARN", testARN)),
			sa:   annotated, cfg: Config{Region: "eu-west-3", RegionalSTS: true}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_REGION", "ap-south-1")+","+env("AWS_STS_REGIONAL_ENDPOINTS", "regional")+","+env("AWS_ROLE_ARN", testARN), ""))),
		},
		{
			// rawPodHasSTS.pod.yaml
			name: "container with region and STS but no credentials gets the credentials",
			pod:  testPod(withEnv("AWS_REGION", "ap-south-1", "AWS_STS_REGIONAL_ENDPOINTS", "regional")),
			sa:   annotated, cfg: Config{Region: "eu-west-3", RegionalSTS: true}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_REGION", "ap-south-1")+","+env("AWS_STS_REGIONAL_ENDPOINTS", "regional")+","+irsaEnv, irsaMount))),
		},
		{
			// rawPodSkip.pod.yaml: AWS_ROLE_ARN alone counts as "credentials defined"
			name: "skip-containers leaves the named container alone; a set AWS_ROLE_ARN is kept",
			pod: testPod(withEnv("AWS_ROLE_ARN", "preset"), withPodAnnotation("eks.amazonaws.com/skip-containers", "sidecar"), func(p *corev1.Pod) {
				p.Spec.Containers = append([]corev1.Container{{Name: "sidecar", Image: testImage}}, p.Spec.Containers...)
			}),
			sa: annotated, cfg: Config{Region: "eu-west-3"}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("sidecar", "", ""), container("main",
				env("AWS_ROLE_ARN", "preset")+","+env("AWS_DEFAULT_REGION", "eu-west-3")+","+env("AWS_REGION", "eu-west-3"), irsaMount))),
		},
		{
			// rawPodWithInitContainer.pod.yaml
			name: "init containers, native sidecars included, are mutated too",
			pod: testPod(func(p *corev1.Pod) {
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: testImage}, {Name: "proxy", Image: testImage, RestartPolicy: &always}}
			}),
			sa: annotated, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount)),
				`{"op":"add","path":"/spec/initContainers","value":[`+container("setup", irsaEnv, irsaMount)+`,`+
					`{"name":"proxy","image":"`+testImage+`","env":[`+irsaEnv+`],"resources":{},"restartPolicy":"Always","volumeMounts":[`+irsaMount+`]}]}`),
		},
		{
			// rawPodHasVolumeMount.pod.yaml
			name: "a volume and a mount of the token's name are kept as they are",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "aws-iam-token", MountPath: "/elsewhere"}}
			}),
			sa: annotated, wantMode: ModeIRSA,
			want: patchOf(addContainers(container("main", irsaEnv, `{"name":"aws-iam-token","mountPath":"/elsewhere"}`))),
		},
		{
			// handler_test.go TestMutatePod: service account token-expiration 3600
			name: "service account token-expiration overrides the flag",
			pod:  testPod(), sa: testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/token-expiration", "3600"),
			cfg: Config{TokenExpiration: 7200}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(`{"name":"aws-iam-token","projected":{"sources":[{"serviceAccountToken":{"audience":"sts.amazonaws.com","expirationSeconds":3600,"path":"token"}}]}}`),
				addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// rawPodHasTokenExpiration.pod.yaml
			name: "pod token-expiration overrides the service account's",
			pod:  testPod(withPodAnnotation("eks.amazonaws.com/token-expiration", "1800")),
			sa:   testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/token-expiration", "3600"), wantMode: ModeIRSA,
			want: patchOf(addVolumes(`{"name":"aws-iam-token","projected":{"sources":[{"serviceAccountToken":{"audience":"sts.amazonaws.com","expirationSeconds":1800,"path":"token"}}]}}`),
				addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// rawPodMinTokenExpiration.pod.yaml
			name: "expiration below 600 seconds is raised to 600",
			pod:  testPod(withPodAnnotation("eks.amazonaws.com/token-expiration", "0")), sa: annotated, wantMode: ModeIRSA,
			want: patchOf(addVolumes(`{"name":"aws-iam-token","projected":{"sources":[{"serviceAccountToken":{"audience":"sts.amazonaws.com","expirationSeconds":600,"path":"token"}}]}}`),
				addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// main.go: *tokenExpiration = pkg.ValidateMinTokenExpiration(*tokenExpiration)
			name: "flag expiration below 600 seconds is raised to 600",
			pod:  testPod(), sa: annotated, cfg: Config{TokenExpiration: 60}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(`{"name":"aws-iam-token","projected":{"sources":[{"serviceAccountToken":{"audience":"sts.amazonaws.com","expirationSeconds":600,"path":"token"}}]}}`),
				addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// pkg/cache/cache.go addSA: audience annotation > --token-audience
			name: "service account audience overrides the flag",
			pod:  testPod(), sa: testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/audience", "my-idp"),
			cfg: Config{TokenAudience: "other"}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(`{"name":"aws-iam-token","projected":{"sources":[{"serviceAccountToken":{"audience":"my-idp","expirationSeconds":86400,"path":"token"}}]}}`),
				addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// windowsPodWithoutVolumes.pod.yaml
			name: "windows node selector gets a windows token path",
			pod:  testPod(withNodeSelector("kubernetes.io/os", "windows")), sa: annotated, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_ROLE_ARN", testARN)+`,{"name":"AWS_WEB_IDENTITY_TOKEN_FILE","value":"C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token"}`, irsaMount))),
		},
		{
			// betaWindowsPodWithoutVolumes.pod.yaml
			name: "beta windows node selector gets a windows token path",
			pod:  testPod(withNodeSelector("beta.kubernetes.io/os", "windows")), sa: annotated, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_ROLE_ARN", testARN)+`,{"name":"AWS_WEB_IDENTITY_TOKEN_FILE","value":"C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token"}`, irsaMount))),
		},
		{
			// main.go --token-mount-path
			name: "token mount path flag moves the mount and the token file",
			pod:  testPod(), sa: annotated, cfg: Config{TokenMountPath: "/aws"}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_ROLE_ARN", testARN)+","+env("AWS_WEB_IDENTITY_TOKEN_FILE", "/aws/token"), `{"name":"aws-iam-token","readOnly":true,"mountPath":"/aws"}`))),
		},
		{
			// main.go --annotation-prefix
			name: "annotation prefix option reads its own domain and ignores eks.amazonaws.com",
			pod:  testPod(), sa: testSA("iam.example.com/role-arn", testARN, "eks.amazonaws.com/audience", "ignored"),
			cfg: Config{AnnotationPrefix: "iam.example.com"}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			name: "annotation prefix option: eks.amazonaws.com/role-arn alone is not enough",
			pod:  testPod(), sa: annotated, cfg: Config{AnnotationPrefix: "iam.example.com"}, wantMode: ModeNone,
		},
		{
			// main.go --compose-role-arn, pkg/cache/cache.go addSA
			name: "compose role ARN turns a role name into an ARN",
			pod:  testPod(), sa: testSA("eks.amazonaws.com/role-arn", "reader"),
			cfg: Config{ComposeRoleARN: ComposeRoleARN{AccountID: "123456789012"}}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// pkg/cache/cache_test.go TestPopulateCacheFromCM
			name: "ConfigMap entry maps an unannotated service account",
			pod:  testPod(), sa: testSA(), cfg: Config{Mappings: Mappings{"apps/reader": {RoleARN: testARN, Audience: "sts.amazonaws.com"}}}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// pkg/cache/cache_test.go TestPopulateCacheFromCMWithWildcard
			name: "ConfigMap wildcard namespace entry applies in every namespace",
			pod:  testPod(), sa: testSA(), cfg: Config{Mappings: Mappings{"*/reader": {RoleARN: testARN, UseRegionalSTS: true, TokenExpiration: 3600}}}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(`{"name":"aws-iam-token","projected":{"sources":[{"serviceAccountToken":{"audience":"sts.amazonaws.com","expirationSeconds":3600,"path":"token"}}]}}`),
				addContainers(container("main", env("AWS_STS_REGIONAL_ENDPOINTS", "regional")+","+irsaEnv, irsaMount))),
		},
		{
			// README "pod-identity-webhook ConfigMap": annotations take precedence
			name: "service account annotation wins over the ConfigMap entry",
			pod:  testPod(), sa: annotated, cfg: Config{Mappings: Mappings{"apps/reader": {RoleARN: "arn:aws:iam::123456789012:role/other", Audience: "x"}}}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			// containercredentials/rawPodWithoutVolumes.pod.yaml (always-zero random source)
			name: "listed service account gets container credentials, the label and a jittered lifetime",
			pod:  testPod(), sa: testSA(), cfg: Config{Identities: ccIdentities, Rand: zeroRand}, wantMode: ModeContainerCredentials,
			want: patchOf(ccLabel, addVolumes(ccVolume("79200")), addContainers(container("main", ccEnv, ccMount))),
		},
		{
			name: "jitter reaches 86400 at the top of its range",
			pod:  testPod(), sa: testSA(), cfg: Config{Identities: ccIdentities, Rand: func(n int64) int64 { return n - 1 }}, wantMode: ModeContainerCredentials,
			want: patchOf(ccLabel, addVolumes(ccVolume("86400")), addContainers(container("main", ccEnv, ccMount))),
		},
		{
			// containercredentials/rawPodWithRoleArn.pod.yaml and rawPodNeedsAll.pod.yaml
			name: "container credentials win over role-arn; the service account's STS and expiration apply without jitter",
			pod:  testPod(),
			sa: testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/sts-regional-endpoints", "true",
				"eks.amazonaws.com/token-expiration", "10000"),
			cfg: Config{Identities: ccIdentities, Rand: zeroRand, Region: "cn-north-1"}, wantMode: ModeContainerCredentials,
			want: patchOf(ccLabel, addVolumes(ccVolume("10000")), addContainers(container("main",
				env("AWS_STS_REGIONAL_ENDPOINTS", "regional")+","+env("AWS_DEFAULT_REGION", "cn-north-1")+","+env("AWS_REGION", "cn-north-1")+","+ccEnv, ccMount))),
		},
		{
			// pkg/handler/handler.go getPodSpecPatch: labels present -> add one key
			name: "pod with labels gets the pod-identity label by its escaped path",
			pod:  testPod(func(p *corev1.Pod) { p.Labels = map[string]string{"app": "x"} }), sa: testSA(),
			cfg: Config{Identities: ccIdentities, Rand: zeroRand}, wantMode: ModeContainerCredentials,
			want: patchOf(`{"op":"add","path":"/metadata/labels/eks.amazonaws.com~1pod-identity","value":"enabled"}`,
				addVolumes(ccVolume("79200")), addContainers(container("main", ccEnv, ccMount))),
		},
		{
			// containercredentials/rawPodWithConflictingVolumeMount.pod.yaml
			name: "container credentials keep a volume and mount of the token's name",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "eks-pod-identity-token"}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "eks-pod-identity-token", MountPath: "/mine", ReadOnly: true}}
			}),
			sa: testSA(), cfg: Config{Identities: ccIdentities, Rand: zeroRand}, wantMode: ModeContainerCredentials,
			want: patchOf(ccLabel, addContainers(container("main", ccEnv, `{"name":"eks-pod-identity-token","readOnly":true,"mountPath":"/mine"}`))),
		},
		{
			// pkg/cache/cache.go GetCommonConfigurations: exact ConfigMap entry when the account is unknown
			name: "container credentials for an unknown service account take STS and expiration from its ConfigMap entry",
			pod:  testPod(), cfg: Config{Identities: ccIdentities, Rand: zeroRand, Mappings: Mappings{"apps/reader": {UseRegionalSTS: true, TokenExpiration: 20000}}},
			wantMode: ModeContainerCredentials,
			want:     patchOf(ccLabel, addVolumes(ccVolume("20000")), addContainers(container("main", env("AWS_STS_REGIONAL_ENDPOINTS", "regional")+","+ccEnv, ccMount))),
		},
		{
			name: "fsGroup opt-in: a non-root pod without fsGroup gets one",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: boolp(true)}
			}),
			sa: annotated, cfg: Config{FSGroup: 65534}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount)),
				`{"op":"add","path":"/spec/securityContext/fsGroup","value":65534}`),
		},
		{
			name: "fsGroup opt-in: a container's runAsUser makes the pod non-root",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: int64p(1000)}
			}),
			sa: annotated, cfg: Config{FSGroup: 65534}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount, `"securityContext":{"runAsUser":1000}`)),
				`{"op":"add","path":"/spec/securityContext","value":{"fsGroup":65534}}`),
		},
		{
			name: "fsGroup opt-in: a pod's own fsGroup is kept",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: int64p(1000), FSGroup: int64p(2000)}
			}),
			sa: annotated, cfg: Config{FSGroup: 65534}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			name: "fsGroup opt-in: a root pod gets none",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: int64p(0)}
			}),
			sa: annotated, cfg: Config{FSGroup: 65534}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			name: "fsGroup is off by default",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: boolp(true)}
			}),
			sa: annotated, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main", irsaEnv, irsaMount))),
		},
		{
			name: "service account region opt-in overrides the region flag",
			pod:  testPod(), sa: testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/region", "us-gov-west-1"),
			cfg: Config{Region: "eu-west-3", ServiceAccountRegion: true}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_DEFAULT_REGION", "us-gov-west-1")+","+env("AWS_REGION", "us-gov-west-1")+","+irsaEnv, irsaMount))),
		},
		{
			name: "service account region annotation is ignored unless opted in",
			pod:  testPod(), sa: testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/region", "us-gov-west-1"),
			cfg: Config{Region: "eu-west-3"}, wantMode: ModeIRSA,
			want: patchOf(addVolumes(irsaVolume), addContainers(container("main",
				env("AWS_DEFAULT_REGION", "eu-west-3")+","+env("AWS_REGION", "eu-west-3")+","+irsaEnv, irsaMount))),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.pod.DeepCopy()
			m, err := Mutate(tc.pod, tc.sa, tc.cfg)
			if err != nil {
				t.Fatalf("Mutate: %v", err)
			}
			if m.Mode != tc.wantMode {
				t.Errorf("mode = %q, want %q", m.Mode, tc.wantMode)
			}
			got, err := m.PatchJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("patch:\n got %s\nwant %s", got, tc.want)
			}
			if lean := leanPatch(t, tc.pod, tc.sa, tc.cfg); lean != tc.want {
				t.Errorf("lean path patch:\n got %s\nwant %s", lean, tc.want)
			}
			if (m.Pod == nil) != (tc.want == "") {
				t.Errorf("mutated pod = %v with patch %q", m.Pod, tc.want)
			}
			if m.Pod != nil {
				// The Pod is what the Patch makes of the input.
				in, _ := json.Marshal(tc.pod)
				patched, err := applyAdd(in, m.Patch)
				if err != nil {
					t.Fatalf("applying the patch: %v", err)
				}
				var want corev1.Pod
				if err := json.Unmarshal(patched, &want); err != nil {
					t.Fatal(err)
				}
				if want.String() != m.Pod.String() {
					t.Errorf("Mutation.Pod differs from the patched pod:\n got %s\nwant %s", m.Pod, &want)
				}
			}
			if tc.pod.String() != before.String() {
				t.Errorf("Mutate modified its input pod")
			}
		})
	}
}

func TestMutateRefusesInvalidAnnotations(t *testing.T) {
	cases := []struct {
		name    string
		pod     *corev1.Pod
		sa      *corev1.ServiceAccount
		cfg     Config
		wantKey string
	}{
		{"role-arn that is not an ARN", testPod(), testSA("eks.amazonaws.com/role-arn", "reader"), Config{}, "eks.amazonaws.com/role-arn"},
		{"role-arn of a user, not a role", testPod(), testSA("eks.amazonaws.com/role-arn", "arn:aws:iam::123456789012:user/bob"), Config{}, "eks.amazonaws.com/role-arn"},
		{"service account token-expiration not a number", testPod(), testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/token-expiration", "1h"), Config{}, "eks.amazonaws.com/token-expiration"},
		{"pod token-expiration not a number", testPod(withPodAnnotation("eks.amazonaws.com/token-expiration", "soon")), testSA("eks.amazonaws.com/role-arn", testARN), Config{}, "eks.amazonaws.com/token-expiration"},
		{"sts-regional-endpoints not a boolean", testPod(), testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/sts-regional-endpoints", "yes"), Config{}, "eks.amazonaws.com/sts-regional-endpoints"},
		{"container credentials with a pod token-expiration not a number", testPod(withPodAnnotation("eks.amazonaws.com/token-expiration", "x")), testSA(), Config{Identities: ccIdentities}, "eks.amazonaws.com/token-expiration"},
		{"ConfigMap entry whose RoleARN is not an ARN", testPod(), testSA(), Config{Mappings: Mappings{"apps/reader": {RoleARN: "reader"}}}, "RoleARN"},
		{"region annotation that is not a region", testPod(), testSA("eks.amazonaws.com/role-arn", testARN, "eks.amazonaws.com/region", "Europe"), Config{ServiceAccountRegion: true}, "eks.amazonaws.com/region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Mutate(tc.pod, tc.sa, tc.cfg)
			var ae *AnnotationError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *AnnotationError", err)
			}
			if ae.Key != tc.wantKey {
				t.Errorf("key = %q, want %q (%v)", ae.Key, tc.wantKey, err)
			}
			if m == nil || m.Mode != ModeNone || m.Patch != nil || m.Pod != nil {
				t.Errorf("mutation = %+v, want none", m)
			}
		})
	}
}
