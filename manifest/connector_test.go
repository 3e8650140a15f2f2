package manifest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const (
	testActivationID   = "5a2ee3b4-8f3c-4c5e-9a7e-0f1b2c3d4e5f"
	testActivationCode = "AbCdEfGhIjKlMnOpQrStUvWx"
	testARN            = "arn:aws:iam::123456789012:role/Admin"
	testARN2           = "arn:aws:iam::123456789012:user/alice"
)

func validConnectorOptions() ConnectorOptions {
	return ConnectorOptions{Region: "eu-west-1", ActivationID: testActivationID, ActivationCode: testActivationCode}
}

func kinds(objs []runtime.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetObjectKind().GroupVersionKind().Kind)
	}
	return out
}

func find[T runtime.Object](t *testing.T, objs []runtime.Object) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T rendered", zero)
	return zero
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func TestRenderConnectorObjectsInApplyOrder(t *testing.T) {
	tests := []struct {
		name string
		opts func(*ConnectorOptions)
		want []string
	}{
		{"code and ARNs render everything", func(o *ConnectorOptions) { o.GrantedARNs = []string{testARN} },
			[]string{"Namespace", "ServiceAccount", "Secret", "Secret", "Secret", "ConfigMap", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "StatefulSet"}},
		{"no granted ARNs renders no impersonation RBAC", func(*ConnectorOptions) {},
			[]string{"Namespace", "ServiceAccount", "Secret", "Secret", "Secret", "ConfigMap", "Role", "RoleBinding", "StatefulSet"}},
		{"no activation code renders no activation Secret, only the state Secrets", func(o *ConnectorOptions) { o.ActivationCode = "" },
			[]string{"Namespace", "ServiceAccount", "Secret", "Secret", "ConfigMap", "Role", "RoleBinding", "StatefulSet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validConnectorOptions()
			tt.opts(&o)
			objs, err := RenderConnector(o)
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(objs); !slices.Equal(got, tt.want) {
				t.Fatalf("kinds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestActivationCodeOnlyInTheSecret(t *testing.T) {
	objs, err := RenderConnector(validConnectorOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if s, isSecret := o.(*corev1.Secret); isSecret && s.Name == DefaultActivationSecretName {
			continue
		}
		j, _ := json.Marshal(o)
		if strings.Contains(string(j), testActivationCode) || strings.Contains(string(j), base64.StdEncoding.EncodeToString([]byte(testActivationCode))) {
			t.Errorf("activation code appears in %T", o)
		}
	}
	s := find[*corev1.Secret](t, objs)
	if s.Name != DefaultActivationSecretName || string(s.Data[ActivationCodeKey]) != testActivationCode {
		t.Errorf("activation secret = %s %q", s.Name, s.Data)
	}
	sts := find[*appsv1.StatefulSet](t, objs)
	init := container(t, sts.Spec.Template.Spec.InitContainers, "connector-init")
	if !slices.Contains(init.Args, "--activation-code-file=/var/run/secrets/eks-connector/activation/code") {
		t.Errorf("init args %v do not read the code from the mounted Secret", init.Args)
	}
	for _, c := range sts.Spec.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.Name == "activation" {
				t.Errorf("container %s mounts the activation Secret; only init may", c.Name)
			}
		}
	}
}

func TestServiceAccountTokenIsProjectedAndKeptFromTheAgent(t *testing.T) {
	objs, err := RenderConnector(validConnectorOptions())
	if err != nil {
		t.Fatal(err)
	}
	sa := find[*corev1.ServiceAccount](t, objs)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("service account automounts a token")
	}
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok && s.Type == corev1.SecretTypeServiceAccountToken {
			t.Error("legacy service-account token Secret rendered")
		}
	}
	pod := find[*appsv1.StatefulSet](t, objs).Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod automounts a token")
	}
	var projected *corev1.ProjectedVolumeSource
	for _, v := range pod.Volumes {
		if v.Name == "service-account-token" {
			projected = v.Projected
		}
	}
	if projected == nil || projected.Sources[0].ServiceAccountToken == nil ||
		*projected.Sources[0].ServiceAccountToken.ExpirationSeconds != DefaultTokenExpirationSeconds ||
		projected.Sources[1].ConfigMap.Name != "kube-root-ca.crt" {
		t.Fatalf("projected token volume = %+v", projected)
	}
	mounts := func(c corev1.Container) bool {
		return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == "service-account-token" && m.MountPath == ServiceAccountTokenDir && m.ReadOnly
		})
	}
	if !mounts(container(t, pod.InitContainers, "connector-init")) || !mounts(container(t, pod.Containers, "connector-proxy")) {
		t.Error("init and proxy must mount the projected token read-only")
	}
	if mounts(container(t, pod.Containers, "connector-agent")) {
		t.Error("the SSM agent must not get the service-account token")
	}
}

func TestRoleIsLimitedToTheReplicasSecrets(t *testing.T) {
	o := validConnectorOptions()
	o.Replicas = 3
	o.StateSecretPrefix = "state"
	objs, err := RenderConnector(o)
	if err != nil {
		t.Fatal(err)
	}
	role := find[*rbacv1.Role](t, objs)
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "update"}, ResourceNames: []string{"state-0", "state-1", "state-2"}},
	}
	gotJSON, _ := json.Marshal(role.Rules)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("rules = %s\nwant    %s", gotJSON, wantJSON)
	}
	for _, r := range role.Rules {
		if slices.Contains(r.Verbs, "list") || slices.Contains(r.Verbs, "watch") || slices.Contains(r.Verbs, "*") {
			t.Errorf("rule %+v allows reading every Secret", r)
		}
		if len(r.ResourceNames) == 0 {
			t.Errorf("rule %+v is not limited by name (create would let a stolen token create any Secret)", r)
		}
	}
	// The state Secrets are rendered, empty, so the store never has to create them.
	var state []string
	for _, obj := range objs {
		if s, ok := obj.(*corev1.Secret); ok && s.Name != DefaultActivationSecretName {
			if len(s.Data) != 0 || len(s.StringData) != 0 {
				t.Errorf("state Secret %s rendered with data", s.Name)
			}
			state = append(state, s.Namespace+"/"+s.Name)
		}
	}
	if want := []string{DefaultNamespace + "/state-0", DefaultNamespace + "/state-1", DefaultNamespace + "/state-2"}; !slices.Equal(state, want) {
		t.Errorf("state Secrets = %v, want %v", state, want)
	}
}

func TestImpersonationClusterRoleNamesExactlyTheGrantedARNs(t *testing.T) {
	o := validConnectorOptions()
	o.GrantedARNs = []string{testARN2, testARN, testARN2}
	objs, err := RenderConnector(o)
	if err != nil {
		t.Fatal(err)
	}
	cr := find[*rbacv1.ClusterRole](t, objs)
	if !slices.Equal(cr.Rules[0].Resources, []string{"users"}) || !slices.Equal(cr.Rules[0].ResourceNames, []string{testARN, testARN2}) {
		t.Errorf("users rule = %+v", cr.Rules[0])
	}
	for _, r := range cr.Rules {
		if slices.Contains(r.Resources, "groups") || slices.Contains(r.Resources, "serviceaccounts") {
			t.Errorf("rule %+v impersonates more than users", r)
		}
	}
	crb := find[*rbacv1.ClusterRoleBinding](t, objs)
	if crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Namespace != DefaultNamespace || crb.Subjects[0].Name != DefaultName {
		t.Errorf("binding subjects = %+v", crb.Subjects)
	}
}

// User extras are opt-in: by default the proxy sends Impersonate-User alone (no --user-extras) and
// the ClusterRole is the RBAC AWS documents for the EKS Connector, one rule on users; with
// UserExtras the proxy gets --user-extras and the role the userextras grant it then needs.
func TestUserExtrasAreOptIn(t *testing.T) {
	for _, extras := range []bool{false, true} {
		t.Run(fmt.Sprintf("UserExtras=%v", extras), func(t *testing.T) {
			o := validConnectorOptions()
			o.GrantedARNs = []string{testARN}
			o.UserExtras = extras
			objs, err := RenderConnector(o)
			if err != nil {
				t.Fatal(err)
			}
			want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{testARN}}}
			if extras {
				want = append(want, rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"userextras/arn", "userextras/sessionname"}, Verbs: []string{"impersonate"}})
			}
			got, _ := json.Marshal(find[*rbacv1.ClusterRole](t, objs).Rules)
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Errorf("rules = %s\nwant    %s", got, wantJSON)
			}
			proxy := container(t, find[*appsv1.StatefulSet](t, objs).Spec.Template.Spec.Containers, "connector-proxy")
			if slices.Contains(proxy.Args, "--user-extras") != extras {
				t.Errorf("proxy args %q, want --user-extras=%v", proxy.Args, extras)
			}
		})
	}
}

// The probes listen on the pod IP only: the kubelet's httpGet probes connect to status.podIP, so
// nothing else (and never every interface) needs to reach /readyz.
func TestProbesBindThePodIPOnly(t *testing.T) {
	objs, err := RenderConnector(validConnectorOptions())
	if err != nil {
		t.Fatal(err)
	}
	proxy := container(t, find[*appsv1.StatefulSet](t, objs).Spec.Template.Spec.Containers, "connector-proxy")
	var addr string
	for _, a := range proxy.Args {
		if v, ok := strings.CutPrefix(a, "--health-addr="); ok {
			addr = v
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "$(POD_IP)" || port != strconv.Itoa(DefaultHealthPort) {
		t.Fatalf("--health-addr=%q (host %q), want [$(POD_IP)]:%d: %v", addr, host, DefaultHealthPort, err)
	}
	if !slices.ContainsFunc(proxy.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
	}) {
		t.Errorf("proxy env %+v lacks POD_IP from status.podIP", proxy.Env)
	}
	// The kubelet expands $(POD_IP) into an address; the bracketed form listens for both families.
	for _, ip := range []string{"127.0.0.1", "::1"} {
		l, err := net.Listen("tcp", strings.Replace(strings.Replace(addr, "$(POD_IP)", ip, 1), strconv.Itoa(DefaultHealthPort), "0", 1))
		if err != nil {
			t.Errorf("%s with POD_IP=%s: %v", addr, ip, err)
			continue
		}
		if got := l.Addr().(*net.TCPAddr).IP; !got.Equal(net.ParseIP(ip)) {
			t.Errorf("listening on %s, want %s", got, ip)
		}
		l.Close()
	}
	if proxy.ReadinessProbe.HTTPGet.Host != "" || proxy.LivenessProbe.HTTPGet.Host != "" {
		t.Error("probes must use the default host, the pod IP")
	}
}

func TestContainersCommandLinesAndSecurity(t *testing.T) {
	o := validConnectorOptions()
	o.SSMEndpoint = "https://ssm.vpce.example"
	o.Env = []corev1.EnvVar{{Name: "HTTPS_PROXY", Value: "http://proxy:3128"}}
	objs, err := RenderConnector(o)
	if err != nil {
		t.Fatal(err)
	}
	pod := find[*appsv1.StatefulSet](t, objs).Spec.Template.Spec
	init := container(t, pod.InitContainers, "connector-init")
	wantInit := []string{"init", "--activation-id=" + testActivationID,
		"--activation-code-file=/var/run/secrets/eks-connector/activation/code", "--region=eu-west-1",
		"--state-namespace=$(POD_NAMESPACE)", "--state-secret-prefix=eks-connector-state",
		"--vault-dir=/var/lib/amazon/ssm/Vault", "--pod-name=$(POD_NAME)", "--ssm-endpoint=https://ssm.vpce.example"}
	if !slices.Equal(init.Args, wantInit) {
		t.Errorf("init args = %q", init.Args)
	}
	proxy := container(t, pod.Containers, "connector-proxy")
	wantProxy := []string{"proxy", "--listen=unix:///var/eks/shared/connector.sock", "--vault-dir=/var/lib/amazon/ssm/Vault",
		"--state-namespace=$(POD_NAMESPACE)", "--state-secret-prefix=eks-connector-state", "--pod-name=$(POD_NAME)",
		"--health-addr=[$(POD_IP)]:8081", "--metrics-addr=127.0.0.1:8080"}
	if !slices.Equal(proxy.Args, wantProxy) {
		t.Errorf("proxy args = %q", proxy.Args)
	}
	if proxy.LivenessProbe.HTTPGet.Path != "/healthz" || proxy.ReadinessProbe.HTTPGet.Path != "/readyz" || proxy.Ports[0].ContainerPort != 8081 {
		t.Error("proxy probes must be /healthz and /readyz on 8081")
	}
	for _, c := range []corev1.Container{init, proxy} {
		sc := c.SecurityContext
		// Root with DAC_OVERRIDE only: the agent hardens the vault to root:root 0600 (see
		// vaultContext), which a non-root init or proxy could not cope with.
		if *sc.RunAsUser != 0 || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"DAC_OVERRIDE"}) ||
			sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s security context = %+v", c.Name, sc)
		}
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HTTPS_PROXY" }) {
			t.Errorf("%s lacks the extra env", c.Name)
		}
	}
	agent := container(t, pod.Containers, "connector-agent")
	if agent.Image != DefaultSSMAgentImage || len(agent.Args) != 0 || len(agent.Command) != 0 {
		t.Errorf("agent must be the unmodified image with its own entrypoint: %s %v %v", agent.Image, agent.Command, agent.Args)
	}
	if !slices.Equal(agent.SecurityContext.Capabilities.Add, []corev1.Capability{"DAC_OVERRIDE"}) ||
		!slices.Equal(agent.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("agent capabilities = %+v", agent.SecurityContext.Capabilities)
	}
	for _, m := range proxy.VolumeMounts {
		if m.Name == "eks-agent-vault" && !m.ReadOnly {
			t.Error("proxy mounts the vault writable; it only reads it")
		}
	}
}

func TestInvalidConnectorOptionsAreAllReported(t *testing.T) {
	tests := []struct {
		name   string
		opts   func(*ConnectorOptions)
		fields []string
	}{
		{"missing region", func(o *ConnectorOptions) { o.Region = "" }, []string{"Region"}},
		{"not a region", func(o *ConnectorOptions) { o.Region = "Europe" }, []string{"Region"}},
		{"activation id not a UUID", func(o *ConnectorOptions) { o.ActivationID = "abc" }, []string{"ActivationID"}},
		{"activation code given as the id is not echoed", func(o *ConnectorOptions) {
			o.ActivationID, o.ActivationCode = "tiny-secret-9-Xk9bQ2mP7rT4vW8", testActivationID
		}, []string{"ActivationID"}},
		{"activation code too short", func(o *ConnectorOptions) { o.ActivationCode = "tiny-secret-9" }, []string{"ActivationCode"}},
		{"negative replicas", func(o *ConnectorOptions) { o.Replicas = -1 }, []string{"Replicas"}},
		{"name too long for a StatefulSet", func(o *ConnectorOptions) { o.Name = strings.Repeat("a", 53) }, []string{"Name"}},
		{"bad namespace", func(o *ConnectorOptions) { o.Namespace = "Not_A_Namespace" }, []string{"Namespace"}},
		{"bad granted ARN", func(o *ConnectorOptions) { o.GrantedARNs = []string{"alice"} }, []string{"GrantedARNs"}},
		{"reserved env", func(o *ConnectorOptions) { o.Env = []corev1.EnvVar{{Name: "POD_NAME", Value: "x"}} }, []string{"Env"}},
		{"reserved env for the probe address", func(o *ConnectorOptions) { o.Env = []corev1.EnvVar{{Name: "POD_IP", Value: "0.0.0.0"}} }, []string{"Env"}},
		{"SSM endpoint that is not a URL", func(o *ConnectorOptions) { o.SSMEndpoint = "ssm.example" }, []string{"SSMEndpoint"}},
		{"unknown pull policy", func(o *ConnectorOptions) { o.ImagePullPolicy = "Sometimes" }, []string{"ImagePullPolicy"}},
		{"short token lifetime", func(o *ConnectorOptions) { o.TokenExpirationSeconds = 60 }, []string{"TokenExpirationSeconds"}},
		{"several problems at once", func(o *ConnectorOptions) { o.Region, o.ActivationID = "", "" }, []string{"Region", "ActivationID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validConnectorOptions()
			tt.opts(&o)
			_, err := RenderConnector(o)
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Field != tt.fields[0] {
				t.Fatalf("first problem = %v, want field %s", err, tt.fields[0])
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not mention %s", err, f)
				}
			}
			if strings.Contains(err.Error(), "tiny-secret-9") {
				t.Error("error leaks the activation code")
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	o := validConnectorOptions()
	o.GrantedARNs = []string{testARN, testARN2}
	var first []byte
	for i := 0; i < 5; i++ {
		objs, err := RenderConnector(o)
		if err != nil {
			t.Fatal(err)
		}
		y, err := YAML(objs)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = y
		} else if string(y) != string(first) {
			t.Fatal("two renders of the same options differ")
		}
	}
	if strings.Contains(string(first), "creationTimestamp") || strings.Contains(string(first), "status:") {
		t.Errorf("YAML carries server-populated fields:\n%s", first)
	}
}
