package manifest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

func TestImageWithRegistry(t *testing.T) {
	for _, tt := range []struct{ image, registry, want string }{
		{"localhost/ekslink/eks-connector:v0.1.0", "mirror.example:5000", "mirror.example:5000/ekslink/eks-connector:v0.1.0"},
		{"public.ecr.aws/amazon-ssm-agent/amazon-ssm-agent:3.1.1927.0", "mirror.example", "mirror.example/amazon-ssm-agent/amazon-ssm-agent:3.1.1927.0"},
		{"registry:5000/team/app@" + "sha256:00", "mirror.example", "mirror.example/team/app@sha256:00"},
		// Docker Hub names have no registry component: the registry goes in front.
		{"team/app:1", "mirror.example", "mirror.example/team/app:1"},
		{"app:1", "mirror.example", "mirror.example/app:1"},
		{"team/app:1", "", "team/app:1"},
	} {
		if got := ImageWithRegistry(tt.image, tt.registry); got != tt.want {
			t.Errorf("ImageWithRegistry(%q, %q) = %q, want %q", tt.image, tt.registry, got, tt.want)
		}
	}
}

func TestImageRegistryReachesEveryImage(t *testing.T) {
	o, objs := connectorObjects(t, func(o *ConnectorOptions) { o.ImageRegistry = "mirror.example:5000" })
	spec := find[*appsv1.StatefulSet](t, objs).Spec.Template.Spec
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if !strings.HasPrefix(c.Image, "mirror.example:5000/") {
			t.Errorf("%s image %q is not from the registry", c.Name, c.Image)
		}
	}
	pobjs, err := RenderPodIdentityAgent(PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1", ImageRegistry: "mirror.example"})
	if err != nil {
		t.Fatal(err)
	}
	if img := find[*appsv1.DaemonSet](t, pobjs).Spec.Template.Spec.Containers[0].Image; img != "mirror.example/ekslink/pod-identity-agent:"+DefaultVersion {
		t.Errorf("agent image = %q", img)
	}
	o.ImageRegistry = "https://mirror.example"
	if _, err := RenderConnector(o); err == nil || !strings.Contains(err.Error(), `ImageRegistry "https://mirror.example"`) {
		t.Fatalf("registry URL accepted: %v", err)
	}
}
