package demo

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest/awsfake"
)

// PodIdentity runs the pod identity agent and has the AWS SDK's container credential provider
// obtain credentials from it, exactly as an SDK in a pod does; STS then names the assumed role.
func (d *Demo) PodIdentity(ctx context.Context) error {
	d.t.heading("EKS Pod Identity: the agent exchanges a pod's token through EKS Auth; the AWS SDK is the client")
	if _, err := d.Env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: PodNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := d.Env.Client.CoreV1().ServiceAccounts(PodNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: PodSA}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	d.AWS.Associate(awsfake.Association{Cluster: ClusterName, Namespace: PodNamespace, ServiceAccount: PodSA, RoleARN: PodRoleARN})
	d.t.call("pod identity association %s/%s -> %s", PodNamespace, PodSA, PodRoleARN)

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	host, port := splitHostPort(addr)
	probe, err := freeAddr()
	if err != nil {
		return err
	}
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{"server", "--cluster-name=" + ClusterName, "--bind-hosts=" + host, "--port=" + port,
		"--probe-addr=" + probe, "--metrics-addr=" + metrics}
	d.t.call("pod-identity-agent %v", args)
	p, err := startProcess("pod-identity-agent", d.bins["pod-identity-agent"], d.dir, d.awsEnv, args...)
	if err != nil {
		return err
	}
	d.procs = append(d.procs, p)
	d.agent = p
	if err := waitFor(ctx, p, 20*time.Second, "the agent's /healthz", httpOK(http.DefaultClient, "http://"+probe+"/healthz")); err != nil {
		return err
	}

	token, err := d.Env.TokenRequest(ctx, PodNamespace, PodSA, []string{awsfake.PodIdentityAudience}, time.Hour)
	if err != nil {
		return err
	}
	tokenFile, err := d.writeFile("eks-pod-identity-token", []byte(token))
	if err != nil {
		return err
	}
	uri := "http://" + addr + "/v1/credentials"
	d.t.call("AWS SDK endpointcreds provider: AWS_CONTAINER_CREDENTIALS_FULL_URI=%s, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=…/%s", uri, "eks-pod-identity-token")
	provider := endpointcreds.New(uri, func(o *endpointcreds.Options) {
		o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
			b, err := os.ReadFile(tokenFile)
			return string(b), err
		})
	})
	var creds aws.Credentials
	for i := 0; i < 3; i++ {
		if creds, err = provider.Retrieve(ctx); err != nil {
			return fmt.Errorf("the SDK could not obtain credentials from the agent: %w\n%s", err, p.logs())
		}
	}
	if calls := d.AWS.AuthCalls(); calls != 1 {
		return fmt.Errorf("three credential requests made %d EKS Auth calls, want 1 (cache)", calls)
	}
	d.t.got("credentials %s… expiring %s; 3 SDK requests, 1 EKS Auth call (cached)", creds.AccessKeyID[:8], creds.Expires.UTC().Format(time.RFC3339))

	cfg := d.AWS.Config()
	cfg.Credentials = aws.NewCredentialsCache(provider)
	id, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(d.AWS.STS.URL) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("STS GetCallerIdentity with the pod's credentials: %w", err)
	}
	d.t.call("sts:GetCallerIdentity signed with those credentials")
	d.t.got("%s", aws.ToString(id.Arn))
	want := "arn:aws:sts::" + d.AWS.AccountID() + ":assumed-role/s3-reader/"
	if len(aws.ToString(id.Arn)) <= len(want) || aws.ToString(id.Arn)[:len(want)] != want {
		return fmt.Errorf("caller identity %s, want the s3-reader role", aws.ToString(id.Arn))
	}

	// A token the agent must refuse before calling upstream.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	req.Header.Set("Authorization", "not-a-jwt")
	resp, err := http.DefaultClient.Do(req)
	body, err := checkStatus(resp, err, http.StatusBadRequest)
	if err != nil {
		return fmt.Errorf("a malformed token: %w", err)
	}
	if calls := d.AWS.AuthCalls(); calls != 1 {
		return fmt.Errorf("a malformed token reached EKS Auth (%d calls, want 1)", calls)
	}
	d.t.call("GET /v1/credentials with a malformed token")
	d.t.got("400 %s (still %d EKS Auth call)", strings.TrimSpace(body), d.AWS.AuthCalls())
	d.t.ok("the pod's SDK got role credentials from the agent")
	return nil
}

func splitHostPort(addr string) (string, string) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	return addr, ""
}
