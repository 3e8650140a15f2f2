package registration_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

// connectedCluster registers "edge" at the fake EKS and lets two replicas register through the real
// Registrar into state Secrets on a real API server (eks-connector-state-0 and -1), as the
// connector's init containers do. It returns the clients and the namespace.
func connectedCluster(t *testing.T, set *awsfake.Set) (*eks.Client, *ssm.Client, *envtest.Environment, string, *registration.ClusterRegistration) {
	t.Helper()
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	eksc := eks.NewFromConfig(set.Config(), func(o *eks.Options) { o.BaseEndpoint = aws.String(set.EKS.URL) })
	ssmc := ssm.NewFromConfig(set.Config(), func(o *ssm.Options) { o.BaseEndpoint = aws.String(set.SSM.URL) })
	reg, _, err := registration.EnsureCluster(ctx, eksc, registration.ClusterSpec{Name: "edge", RoleARN: "arn:aws:iam::111122223333:role/eks-connector-agent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"eks-connector-state-0", "eks-connector-state-1"} {
		registerInto(t, set, reg, statestore.NewSecret(env.Client, ns, name, statestore.SecretOptions{}))
	}
	return eksc, ssmc, env, ns, reg
}

func registerInto(t *testing.T, set *awsfake.Set, reg *registration.ClusterRegistration, store statestore.Store) *registration.State {
	t.Helper()
	client, err := registration.NewFromConfig(set.Config(), func(o *registration.ClientOptions) { o.BaseEndpoint = aws.String(set.SSM.URL) })
	if err != nil {
		t.Fatal(err)
	}
	r, err := registration.New(store, reg.Activation, registration.Options{Region: set.Region(), Client: client})
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Ensure(envtest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// recordOrphan appends an orphan to a state Secret's record, as the Registrar does when it replaces
// a registration.
func recordOrphan(t *testing.T, env *envtest.Environment, ns, secret, instanceID string) {
	t.Helper()
	ctx := envtest.Context(t)
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var st registration.State
	if err := json.Unmarshal(sec.Data[registration.StateKey], &st); err != nil {
		t.Fatal(err)
	}
	st.Orphans = append(st.Orphans, registration.Orphan{ActivationID: st.ActivationID, InstanceID: instanceID, Reason: "test", At: time.Now()})
	sec.Data[registration.StateKey], _ = json.Marshal(st)
	if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Status, cleanup and deregistration over the real state Secrets: two replicas registered, one
// managed instance left by a crashed init (no state holds it) and one recorded as an orphan.
func TestConnectorLifecycle(t *testing.T) {
	set, err := awsfake.Start(awsfake.Options{RegistrationLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	eksc, ssmc, env, ns, reg := connectedCluster(t, set)
	ctx := envtest.Context(t)
	lost := registerInto(t, set, reg, statestore.NewMemory())     // a crashed init: registered, never recorded
	recorded := registerInto(t, set, reg, statestore.NewMemory()) // replaced, recorded as an orphan
	recordOrphan(t, env, ns, "eks-connector-state-1", recorded.InstanceID)

	replicas, err := registration.LoadReplicas(ctx, env.Client, ns, "eks-connector-state")
	if err != nil || len(replicas) != 2 || !replicas[0].State.Registered() || !replicas[1].State.Registered() {
		t.Fatalf("replicas %+v %v", replicas, err)
	}
	st, err := registration.GetConnectorStatus(ctx, eksc, ssmc, "edge", replicas)
	if err != nil || st.Verdict != registration.NotConnected || st.Replicas[0].PingStatus != "ConnectionLost" {
		t.Fatalf("before any ping: %+v %v", st, err)
	}
	for _, r := range replicas {
		set.Ping(r.State.InstanceID, "3.3.1142.0")
	}
	st, err = registration.GetConnectorStatus(ctx, eksc, ssmc, "edge", replicas)
	if err != nil || st.Verdict != registration.Degraded || st.Cluster.Status != "ACTIVE" || st.Replicas[1].AgentVersion != "3.3.1142.0" ||
		!slices.Equal(st.Unowned, sorted(lost.InstanceID, recorded.InstanceID)) || st.Replicas[1].Orphans != 1 {
		t.Fatalf("degraded: %+v %v", st, err)
	}

	res, err := registration.CleanupOrphans(ctx, eksc, ssmc, "edge", replicas)
	if err != nil || !slices.Equal(sorted(res.Deregistered...), sorted(lost.InstanceID, recorded.InstanceID)) {
		t.Fatalf("cleanup: %+v %v", res, err)
	}
	replicas, _ = registration.LoadReplicas(ctx, env.Client, ns, "eks-connector-state")
	if len(replicas[1].State.Orphans) != 0 {
		t.Fatalf("the deregistered orphan is still recorded: %+v", replicas[1].State.Orphans)
	}
	calls := set.Calls("DeregisterManagedInstance")
	res, err = registration.CleanupOrphans(ctx, eksc, ssmc, "edge", replicas)
	if err != nil || len(res.Deregistered)+len(res.AlreadyGone) != 0 || set.Calls("DeregisterManagedInstance") != calls {
		t.Fatalf("second cleanup: %+v %v", res, err)
	}
	st, err = registration.GetConnectorStatus(ctx, eksc, ssmc, "edge", replicas)
	if err != nil || st.Verdict != registration.Connected || len(st.Reasons) != 0 {
		t.Fatalf("after cleanup: %+v %v", st, err)
	}

	set.Fail("DescribeInstanceInformation", 1, 400, "AccessDeniedException", "User is not authorized to perform: ssm:DescribeInstanceInformation")
	if _, err := registration.GetConnectorStatus(ctx, eksc, ssmc, "edge", replicas); err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("access denied: %v", err)
	}
	set.Fail("DeregisterManagedInstance", 1, 400, "ThrottlingException", "Rate exceeded") // retried by the SDK
	res, err = registration.Deregister(ctx, eksc, ssmc, "edge", replicas)
	if err != nil || !res.ClusterDeregistered || len(res.Deregistered) != 2 || len(set.Instances()) != 0 {
		t.Fatalf("deregister: %+v %v, instances left %v", res, err, set.Instances())
	}
	res, err = registration.Deregister(ctx, eksc, ssmc, "edge", replicas)
	if err != nil || res.ClusterDeregistered || len(res.Deregistered) != 0 || len(res.AlreadyGone) != 2 {
		t.Fatalf("second deregister: %+v %v", res, err)
	}
	st, err = registration.GetConnectorStatus(ctx, eksc, ssmc, "edge", replicas)
	if err != nil || st.Verdict != registration.NotConnected || st.Cluster.Status != "NOT REGISTERED" {
		t.Fatalf("after deregister: %+v %v", st, err)
	}
	if _, err := registration.CleanupOrphans(ctx, eksc, ssmc, "edge", replicas); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("cleanup of a cluster EKS does not have: %v", err)
	}
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
