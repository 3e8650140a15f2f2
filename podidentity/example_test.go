package podidentity_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/ekslink/ekslink/podidentity"
)

// staticUpstream stands in for *podidentity.Client so the example runs offline.
type staticUpstream struct{}

func (staticUpstream) AssumeRoleForPodIdentity(ctx context.Context, cluster, token string) (*podidentity.AssumeRoleForPodIdentityOutput, error) {
	return &podidentity.AssumeRoleForPodIdentityOutput{
		Credentials: podidentity.AuthCredentials{
			AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: "session",
			Expiration: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		},
		AssumedRoleUser: podidentity.AuthAssumedRoleUser{ARN: "arn:aws:sts::111122223333:assumed-role/app/eks-demo"},
	}, nil
}

// ExampleServer runs the agent in-process on loopback, as a demo or a test would. In a real agent
// the upstream is the EKS Auth client, podidentity.NewFromConfig(awsCfg), and the listeners are
// 169.254.170.23:80 and [fd00:ec2::23]:80.
func ExampleServer() {
	srv, err := podidentity.NewServer(staticUpstream{}, podidentity.ServerOptions{ClusterName: "demo"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx, ln) }()

	// What an AWS SDK does with AWS_CONTAINER_CREDENTIALS_FULL_URI and the token file.
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/v1/credentials", nil)
	req.Header.Set("Authorization", "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 {"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"secret","Token":"session","AccountId":"111122223333","Expiration":"2099-01-01T00:00:00Z"}
}
