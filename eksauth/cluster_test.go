package eksauth_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/iamarn"
)

// localEKS serves DescribeCluster for the given clusters (name -> JSON "cluster" object).
type localEKS struct {
	*awstest.Server
}

func newLocalEKS(t *testing.T, clusters map[string]map[string]any) *localEKS {
	e := &localEKS{Server: awstest.New(t, awstest.Options{Service: "eks", Region: "eu-west-1", Protocol: awstest.RESTJSON})}
	e.Handle("GET /clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := clusters[r.PathValue("name")]
		if !ok {
			awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "No cluster found for name: "+r.PathValue("name"))
			return
		}
		awstest.WriteJSON(w, "application/json", map[string]any{"cluster": c})
	})
	return e
}

func clusterJSON(endpoint string, caPEM []byte, status, mode string) map[string]any {
	return map[string]any{
		"name": "prod", "arn": "arn:aws:eks:eu-west-1:111122223333:cluster/prod", "status": status,
		"endpoint": endpoint, "certificateAuthority": map[string]any{"data": base64.StdEncoding.EncodeToString(caPEM)},
		"accessConfig": map[string]any{"authenticationMode": mode},
	}
}

func TestRESTConfigFromDescribeCluster(t *testing.T) {
	clock := newFakeClock(time.Now())
	api := newTokenCheckingAPIServer(t, clock)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})
	local := map[string]any{"name": "edge", "id": "2f1e7c3a-0d5b-4c1e-9a51-3b2d9f8e7a10", "status": "ACTIVE", "endpoint": api.URL,
		"certificateAuthority": map[string]any{"data": base64.StdEncoding.EncodeToString(caPEM)}, "outpostConfig": map[string]any{"outpostArns": []string{"arn:aws:outposts:eu-west-1:111122223333:outpost/op-1"}}}
	srv := newLocalEKS(t, map[string]map[string]any{
		"prod":     clusterJSON(api.URL, caPEM, "ACTIVE", "API_AND_CONFIG_MAP"),
		"creating": clusterJSON("", nil, "CREATING", "API"),
		"http":     clusterJSON(strings.Replace(api.URL, "https", "http", 1), caPEM, "ACTIVE", "API"),
		"noca":     clusterJSON(api.URL, nil, "ACTIVE", "API"),
		"edge":     local,
		"badca":    clusterJSON(api.URL, []byte("garbage"), "ACTIVE", "API"),
	})
	cfg := srv.Config()
	ctx := context.Background()
	opts := eksauth.ClusterOptions{Token: eksauth.TokenOptions{Now: clock.Now}}

	rc, err := eksauth.RESTConfig(ctx, cfg, "prod", opts)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	// The CA from DescribeCluster verifies the server; the token refreshes across expiry.
	for i := 0; i < 3; i++ {
		if _, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		clock.Advance(20 * time.Minute)
	}
	if api.distinctTokens() != 3 {
		t.Errorf("tokens = %d, want 3 (one per expiry)", api.distinctTokens())
	}

	c, err := eksauth.DescribeCluster(ctx, cfg, "edge", eksauth.ClusterOptions{})
	if err != nil || !c.Local || c.TokenCluster() != "2f1e7c3a-0d5b-4c1e-9a51-3b2d9f8e7a10" {
		t.Fatalf("local cluster: %+v, %v", c, err)
	}

	for name, check := range map[string]func(error) bool{
		"creating": func(err error) bool { return errors.Is(err, eksauth.ErrClusterNotActive) },
		"http":     func(err error) bool { return err != nil && strings.Contains(err.Error(), "https") },
		"noca":     func(err error) bool { return err != nil && strings.Contains(err.Error(), "certificate authority") },
		"badca":    func(err error) bool { return err != nil && strings.Contains(err.Error(), "PEM") },
		"missing":  func(err error) bool { return err != nil && strings.Contains(err.Error(), "ResourceNotFoundException") },
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			if _, err := eksauth.RESTConfig(ctx, cfg, name, opts); !check(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	t.Run("no region is refused", func(t *testing.T) {
		noRegion := cfg.Copy()
		noRegion.Region = ""
		if _, err := eksauth.DescribeCluster(ctx, noRegion, "prod", eksauth.ClusterOptions{}); !errors.Is(err, eksauth.ErrNoRegion) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKubeconfigRendersAnExecStanza(t *testing.T) {
	c := &eksauth.Cluster{Name: "prod", ARN: "arn:aws:eks:eu-west-1:111122223333:cluster/prod", Region: "eu-west-1", Endpoint: "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
		CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})}
	data, err := eksauth.Kubeconfig(c, eksauth.KubeconfigOptions{Profile: "ci", RoleARN: "arn:aws:iam::111122223333:role/deployer"})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	ai := kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo]
	if ai == nil || ai.Exec == nil {
		t.Fatalf("no exec stanza:\n%s", data)
	}
	e := ai.Exec
	want := "token --cluster-name prod --region eu-west-1 --role-arn arn:aws:iam::111122223333:role/deployer"
	if e.Command != "ekslink" || strings.Join(e.Args, " ") != want || e.InteractiveMode != "Never" || e.APIVersion != eksauth.ExecCredentialV1beta1 {
		t.Errorf("exec = %+v", e)
	}
	if len(e.Env) != 1 || e.Env[0].Name != "AWS_PROFILE" || e.Env[0].Value != "ci" {
		t.Errorf("env = %+v", e.Env)
	}
	if kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server != c.Endpoint {
		t.Errorf("server lost")
	}

	dir := t.TempDir()
	p1, cleanup1, err := eksauth.WriteTempKubeconfig(dir, data)
	if err != nil {
		t.Fatal(err)
	}
	p2, cleanup2, err := eksauth.WriteTempKubeconfig(dir, data)
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 || filepath.Dir(p1) != dir {
		t.Fatalf("paths %s %s", p1, p2)
	}
	st, err := os.Stat(p1)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	f, _ := os.Open(p1)
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != string(data) {
		t.Fatal("content differs")
	}
	if err := cleanup1(); err != nil {
		t.Fatal(err)
	}
	_ = cleanup2()
	if _, err := os.Stat(p1); !os.IsNotExist(err) {
		t.Fatal("not removed")
	}
}

func TestKubeconfigRefusesARoleARNThatIsNotARole(t *testing.T) {
	c := &eksauth.Cluster{Name: "prod", Region: "eu-west-1", Endpoint: "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
		CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})}
	for _, tc := range []struct {
		arn       string
		malformed bool
	}{
		{"deployer", true},
		{"arn:aws:iam::11112222333:role/deployer", true},
		{"arn:aws:iam::111122223333:user/alice", false},
		{"arn:aws:sts::111122223333:assumed-role/deployer/s", false},
	} {
		_, err := eksauth.Kubeconfig(c, eksauth.KubeconfigOptions{RoleARN: tc.arn})
		if err == nil || errors.Is(err, iamarn.ErrInvalid) != tc.malformed {
			t.Errorf("RoleARN %q: %v (want an error; malformed: %t)", tc.arn, err, tc.malformed)
		}
	}
	if _, err := eksauth.Kubeconfig(c, eksauth.KubeconfigOptions{RoleARN: "arn:aws-cn:iam::111122223333:role/team/deployer"}); err != nil {
		t.Errorf("a role ARN with a path in aws-cn: %v", err)
	}
}
