package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

// registerReplica does what a connector replica's init container does: register with SSM through
// the Registrar and record it in store.
func registerReplica(t *testing.T, set *awsfake.Set, act *registration.ActivationFile, store statestore.Store) string {
	t.Helper()
	client, err := registration.NewFromConfig(set.Config(), func(o *registration.ClientOptions) { o.BaseEndpoint = aws.String(set.SSM.URL) })
	if err != nil {
		t.Fatal(err)
	}
	r, err := registration.New(store, registration.Activation{ID: act.ActivationID, Code: act.ActivationCode}, registration.Options{Region: act.Region, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Ensure(envtest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	return st.InstanceID
}

// The rest of seed 001 through the CLI, on a real API server: status of a registered connector
// (not connected, then degraded by a managed instance no replica owns), cleanup of that orphan
// (twice: the second run deregisters nothing), status connected, deregister with
// --delete-in-cluster (no managed instance left, the connector's objects gone), and deregister
// again (nothing left to do, no SSM write).
func TestConnectorStatusCleanupDeregisterCommands(t *testing.T) {
	set := useAWSFake(t, awsfake.Options{RegistrationLimit: 5})
	env := useKubeconfig(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	file := filepath.Join(t.TempDir(), "activation.json")
	if _, err := runEKS(t, "connector", "register", "--name", "edge", "--agent-role-arn", "arn:aws:iam::111122223333:role/eks-connector-agent",
		"--activation-file", file, "--apply", "--namespace", ns); err != nil {
		t.Fatal(err)
	}
	act, err := registration.ReadActivationFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var owned []string
	for _, name := range manifest.StateSecretNames(manifest.DefaultStateSecretPrefix, manifest.DefaultReplicas) {
		owned = append(owned, registerReplica(t, set, act, statestore.NewSecret(env.Client, ns, name, statestore.SecretOptions{})))
	}
	status := func() registration.ConnectorStatus {
		t.Helper()
		out, err := runEKS(t, "connector", "status", "--name", "edge", "--namespace", ns, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var st registration.ConnectorStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return st
	}
	if st := status(); st.Verdict != registration.NotConnected || len(st.Replicas) != 2 {
		t.Fatalf("no agent pinged yet: %+v", st)
	}
	for _, id := range owned {
		set.Ping(id, "3.3.1142.0")
	}
	lost := registerReplica(t, set, act, statestore.NewMemory()) // a crashed init's registration
	if st := status(); st.Verdict != registration.Degraded || len(st.Unowned) != 1 || st.Unowned[0] != lost {
		t.Fatalf("degraded: %+v", st)
	}
	out, err := runEKS(t, "connector", "status", "--name", "edge", "--namespace", ns)
	if err != nil || !strings.Contains(out, "edge: degraded") || !strings.Contains(out, "ekslink connector cleanup") {
		t.Fatalf("text status: %s %v", out, err)
	}
	if out, err := runEKS(t, "connector", "cleanup", "--name", "edge", "--namespace", ns); err != nil || !strings.Contains(out, "deregistered managed instances: "+lost) {
		t.Fatalf("cleanup: %s %v", out, err)
	}
	if out, err := runEKS(t, "connector", "cleanup", "--name", "edge", "--namespace", ns); err != nil || !strings.Contains(out, "no managed instance to deregister") || set.Calls("DeregisterManagedInstance") != 1 {
		t.Fatalf("second cleanup: %s %v", out, err)
	}
	if st := status(); st.Verdict != registration.Connected {
		t.Fatalf("connected: %+v", st)
	}

	out, err = runEKS(t, "connector", "deregister", "--name", "edge", "--namespace", ns, "--delete-in-cluster")
	if err != nil || !strings.Contains(out, "deregistered edge from EKS") || len(set.Instances()) != 0 {
		t.Fatalf("deregister: %s %v; instances left %v", out, err, set.Instances())
	}
	for _, name := range append(manifest.StateSecretNames(manifest.DefaultStateSecretPrefix, manifest.DefaultReplicas), manifest.DefaultActivationSecretName) {
		if _, err := env.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("Secret %s still there: %v", name, err)
		}
	}
	if _, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, manifest.DefaultName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("StatefulSet still there: %v", err)
	}
	calls := set.Calls("DeregisterManagedInstance")
	out, err = runEKS(t, "connector", "deregister", "--name", "edge", "--namespace", ns, "--delete-in-cluster")
	if err != nil || !strings.Contains(out, "deregistered already") || !strings.Contains(out, "no managed instance") || set.Calls("DeregisterManagedInstance") != calls || set.Calls("DeregisterCluster") != 1 {
		t.Fatalf("second deregister: %s %v", out, err)
	}
	if st := status(); st.Verdict != registration.NotConnected {
		t.Fatalf("after deregister: %+v", st)
	}
}
