package webhook_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/webhook"
)

// Mutate needs no server: give it the pod, its service account and the configuration.
func ExampleMutate() {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: "s3-echoer",
		Annotations: map[string]string{"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/s3-echoer"},
	}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s3-tester"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "s3-echoer",
			Containers:         []corev1.Container{{Name: "main", Image: "public.ecr.aws/amazonlinux/amazonlinux:latest"}},
		},
	}
	m, err := webhook.Mutate(pod, sa, webhook.Config{Region: "eu-west-1"})
	if err != nil {
		panic(err)
	}
	fmt.Println("mode:", m.Mode)
	for _, e := range m.Pod.Spec.Containers[0].Env {
		fmt.Printf("%s=%s\n", e.Name, e.Value)
	}
	tok := m.Pod.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken
	fmt.Println("token audience:", tok.Audience, "lifetime:", *tok.ExpirationSeconds)
	for _, op := range m.Patch {
		fmt.Println(op.Op, op.Path)
	}
	// Output:
	// mode: irsa
	// AWS_DEFAULT_REGION=eu-west-1
	// AWS_REGION=eu-west-1
	// AWS_ROLE_ARN=arn:aws:iam::111122223333:role/s3-echoer
	// AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token
	// token audience: sts.amazonaws.com lifetime: 86400
	// add /spec/volumes
	// add /spec/containers
}
