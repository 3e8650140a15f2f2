package manifest

import (
	"errors"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestPodIdentityAgentDaemonSet(t *testing.T) {
	objs, err := RenderPodIdentityAgent(PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	ds := find[*appsv1.DaemonSet](t, objs)
	pod := ds.Spec.Template.Spec
	if ds.Namespace != "kube-system" || !pod.HostNetwork || *pod.AutomountServiceAccountToken || pod.PriorityClassName != "system-node-critical" {
		t.Errorf("pod = %+v", pod)
	}
	init := container(t, pod.InitContainers, "pod-identity-agent-init")
	if !slices.Equal(init.Args, []string{"init"}) || !slices.Equal(init.SecurityContext.Capabilities.Add, []corev1.Capability{"NET_ADMIN"}) {
		t.Errorf("init = %v %+v", init.Args, init.SecurityContext.Capabilities)
	}
	srv := container(t, pod.Containers, "pod-identity-agent")
	want := []string{"server", "--cluster-name=prod", "--bind-hosts=169.254.170.23,[fd00:ec2::23]", "--port=80",
		"--probe-addr=127.0.0.1:2703", "--metrics-addr=127.0.0.1:2705"}
	if !slices.Equal(srv.Args, want) {
		t.Errorf("server args = %q", srv.Args)
	}
	sc := srv.SecurityContext
	if !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		*sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("server security context = %+v", sc)
	}
	lp, rp := srv.LivenessProbe.HTTPGet, srv.ReadinessProbe.HTTPGet
	if lp.Host != "127.0.0.1" || lp.Port.IntValue() != 2703 || lp.Path != "/healthz" || rp.Path != "/readyz" || rp.Port.IntValue() != 2703 {
		t.Errorf("probes = %+v %+v", lp, rp)
	}
	if srv.Env[0].Name != "AWS_REGION" || srv.Env[0].Value != "eu-west-1" || len(srv.VolumeMounts) != 0 {
		t.Errorf("env %v mounts %v", srv.Env, srv.VolumeMounts)
	}
	if slices.Contains(srv.Args, "--rotate-credentials") {
		t.Errorf("--rotate-credentials without hybrid credentials: %q", srv.Args)
	}
}

func TestPodIdentityAgentHybridCredentialsAndCustomAddresses(t *testing.T) {
	objs, err := RenderPodIdentityAgent(PodIdentityAgentOptions{
		ClusterName: "hybrid", Region: "us-gov-west-1", BindHosts: []string{"169.254.170.23"}, Port: 8080,
		ProbeAddr: "0.0.0.0:9000", MetricsAddr: ":9001", HybridCredentialsDir: DefaultHybridCredentialsDir,
		Image: "registry.example/pia:1",
	})
	if err != nil {
		t.Fatal(err)
	}
	pod := find[*appsv1.DaemonSet](t, objs).Spec.Template.Spec
	srv := container(t, pod.Containers, "pod-identity-agent")
	if srv.Image != "registry.example/pia:1" || !slices.Contains(srv.Args, "--bind-hosts=169.254.170.23") || !slices.Contains(srv.Args, "--port=8080") {
		t.Errorf("server = %s %v", srv.Image, srv.Args)
	}
	init := container(t, pod.InitContainers, "pod-identity-agent-init")
	if !slices.Equal(init.Args, []string{"init", "--addresses=169.254.170.23/32"}) {
		t.Errorf("init must create exactly the custom bind hosts: %q", init.Args)
	}
	if srv.LivenessProbe.HTTPGet.Host != "" || srv.LivenessProbe.HTTPGet.Port.IntValue() != 9000 {
		t.Errorf("a wildcard probe address must probe the node IP: %+v", srv.LivenessProbe.HTTPGet)
	}
	if !slices.Contains(srv.Env, corev1.EnvVar{Name: "AWS_SHARED_CREDENTIALS_FILE", Value: "/eks-hybrid/.aws/credentials"}) ||
		len(srv.VolumeMounts) != 1 || !srv.VolumeMounts[0].ReadOnly || pod.Volumes[0].HostPath.Path != "/eks-hybrid/.aws" {
		t.Errorf("hybrid credentials: env %v mounts %v volumes %v", srv.Env, srv.VolumeMounts, pod.Volumes)
	}
	// The node's credentials file is rewritten as they rotate: the agent must follow it.
	if !slices.Contains(srv.Args, "--rotate-credentials") {
		t.Errorf("hybrid server args lack --rotate-credentials: %q", srv.Args)
	}
}

func TestInvalidPodIdentityAgentOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  PodIdentityAgentOptions
		field string
	}{
		{"missing cluster name", PodIdentityAgentOptions{Region: "eu-west-1"}, "ClusterName"},
		{"cluster name with a slash", PodIdentityAgentOptions{ClusterName: "a/b", Region: "eu-west-1"}, "ClusterName"},
		{"missing region", PodIdentityAgentOptions{ClusterName: "c"}, "Region"},
		{"IPv6 without brackets", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", BindHosts: []string{"fd00:ec2::23"}}, "BindHosts"},
		{"IPv4 in brackets", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", BindHosts: []string{"[169.254.170.23]"}}, "BindHosts"},
		{"IPv4 wildcard", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", BindHosts: []string{"0.0.0.0"}}, "BindHosts"},
		{"IPv6 wildcard", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", BindHosts: []string{"[::]"}}, "BindHosts"},
		{"unclosed bracket", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", BindHosts: []string{"[fd00:ec2::23"}}, "BindHosts"},
		{"host name instead of IP", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", BindHosts: []string{"localhost"}}, "BindHosts"},
		{"port out of range", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", Port: 70000}, "Port"},
		{"probe address without port", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", ProbeAddr: "127.0.0.1"}, "ProbeAddr"},
		{"relative hybrid dir", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", HybridCredentialsDir: "eks-hybrid"}, "HybridCredentialsDir"},
		{"associations without namespace", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", WebIdentity: &PodIdentityWebIdentity{Associations: "assoc"}}, "WebIdentity.Associations"},
		{"associations namespace not a name", PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", WebIdentity: &PodIdentityWebIdentity{Associations: "Kube_System/assoc"}}, "WebIdentity.Associations namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RenderPodIdentityAgent(tt.opts)
			var oe *OptionError
			if !errors.Is(err, ErrInvalidOptions) || !errors.As(err, &oe) || oe.Field != tt.field {
				t.Fatalf("err = %v, want a %s problem", err, tt.field)
			}
		})
	}
}

// The capabilities only take effect for root, so both containers run as uid 0 whatever the image
// says; the server gets NET_BIND_SERVICE only when its port needs it.
func TestPodIdentityAgentCapabilitiesAreExactlyWhatThePortNeeds(t *testing.T) {
	tests := []struct {
		name string
		port int32
		want []corev1.Capability
	}{
		{"port 80 needs NET_BIND_SERVICE", 80, []corev1.Capability{"NET_BIND_SERVICE"}},
		{"port 1023 needs NET_BIND_SERVICE", 1023, []corev1.Capability{"NET_BIND_SERVICE"}},
		{"port 1024 needs no capability", 1024, nil},
		{"port 8080 needs no capability", 8080, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := RenderPodIdentityAgent(PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1", Port: tt.port})
			if err != nil {
				t.Fatal(err)
			}
			pod := find[*appsv1.DaemonSet](t, objs).Spec.Template.Spec
			srv := container(t, pod.Containers, "pod-identity-agent").SecurityContext
			if !slices.Equal(srv.Capabilities.Add, tt.want) || !slices.Equal(srv.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("server capabilities = %+v, want add %v", srv.Capabilities, tt.want)
			}
			for _, c := range []corev1.Container{container(t, pod.InitContainers, "pod-identity-agent-init"), container(t, pod.Containers, "pod-identity-agent")} {
				sc := c.SecurityContext
				if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot {
					t.Errorf("%s: runAsUser %v runAsNonRoot %v, want root (added capabilities are not effective otherwise)", c.Name, sc.RunAsUser, sc.RunAsNonRoot)
				}
			}
		})
	}
}
