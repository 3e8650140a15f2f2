package manifest_test

import (
	"fmt"
	"strings"

	"github.com/ekslink/ekslink/manifest"
)

// Render the connector for a cluster registered with "aws eks register-cluster" and print what
// would be applied.
func ExampleRenderConnector() {
	objs, err := manifest.RenderConnector(manifest.ConnectorOptions{
		Region:         "eu-west-1",
		ActivationID:   "5a2ee3b4-8f3c-4c5e-9a7e-0f1b2c3d4e5f",
		ActivationCode: "AbCdEfGhIjKlMnOpQrStUvWx",
		GrantedARNs:    []string{"arn:aws:iam::123456789012:role/Admin"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range objs {
		fmt.Println(o.GetObjectKind().GroupVersionKind().Kind)
	}
	y, _ := manifest.YAML(objs) // for kubectl apply -f -, or manifest.Apply with a rest.Config
	fmt.Println(strings.Contains(string(y), "AbCdEfGhIjKlMnOpQrStUvWx"))
	// Output:
	// Namespace
	// ServiceAccount
	// Secret
	// Secret
	// Secret
	// ConfigMap
	// Role
	// RoleBinding
	// ClusterRole
	// ClusterRoleBinding
	// StatefulSet
	// false
}

func ExampleRenderPodIdentityAgent() {
	objs, err := manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	y, _ := manifest.YAML(objs)
	fmt.Println(strings.Contains(string(y), "--bind-hosts=169.254.170.23,[fd00:ec2::23]"))
	// Output: true
}

// Every problem with the options is reported at once.
func ExampleRenderConnector_invalid() {
	_, err := manifest.RenderConnector(manifest.ConnectorOptions{Region: "Europe"})
	fmt.Println(err)
	// Output:
	// manifest: Region "Europe": iamarn: "Europe" is not a region name (expected something like eu-west-1)
	// manifest: ActivationID "": must be the UUID "aws eks register-cluster" returned (activationId)
}
