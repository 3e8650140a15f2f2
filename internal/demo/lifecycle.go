package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ekslink/ekslink/registration"
)

// ConnectorLifecycle is the rest of the connector's life, as "ekslink connector register",
// "status" and "deregister" do it: registering again changes nothing (EnsureCluster finds the
// registration of step 3), the status verdict from EKS, the state Secrets and SSM is "connected",
// then deregistration of the cluster and of every managed instance leaves no managed instance in
// SSM, and a second deregistration finds nothing left. It must run last: it removes the
// registration the other connector steps use. The SSM agent's heartbeat is not on the wire here,
// so the demo records one with the fake's Ping in its place.
func (d *Demo) ConnectorLifecycle(ctx context.Context) error {
	d.t.heading("Connector lifecycle: register again, status, deregister, no orphan left (ekslink connector)")
	eksc := eks.NewFromConfig(d.AWS.Config(), func(o *eks.Options) { o.BaseEndpoint = aws.String(d.AWS.EKS.URL) })
	ssmc := ssm.NewFromConfig(d.AWS.Config(), func(o *ssm.Options) { o.BaseEndpoint = aws.String(d.AWS.SSM.URL) })
	d.t.call("eks:DescribeCluster %s (register again, idempotent)", ClusterName)
	again, created, err := registration.EnsureCluster(ctx, eksc, registration.ClusterSpec{Name: ClusterName, Provider: "EKS_ANYWHERE", RoleARN: AgentRoleARN})
	if err != nil {
		return err
	}
	if created || again.Activation.ID != d.registration.Activation.ID {
		return fmt.Errorf("registering again created %v, activation %s; want no change to %s", created, again.Activation.ID, d.registration.Activation.ID)
	}
	d.t.got("registered already (activation %s): no change, no RegisterCluster call", again.Activation.ID)
	replicas, err := registration.LoadReplicas(ctx, d.Env.Client, connectorNS, statePrefix)
	if err != nil {
		return err
	}
	if len(replicas) == 0 || !replicas[0].State.Registered() {
		return errors.New("no registered replica: run the connector init step first")
	}
	d.AWS.Ping(replicas[0].State.InstanceID, "3.1.1927.0")
	d.t.note("agent heartbeat for %s recorded at the fake SSM (stands in for UpdateInstanceInformation)", replicas[0].State.InstanceID)
	d.t.call("eks:DescribeCluster %s, ssm:DescribeInstanceInformation ActivationIds=%s", ClusterName, d.registration.Activation.ID)
	st, err := registration.GetConnectorStatus(ctx, eksc, ssmc, ClusterName, replicas)
	if err != nil {
		return err
	}
	d.t.got("verdict %q, EKS %s", st.Verdict, st.Cluster.Status)
	for _, r := range st.Replicas {
		d.t.got("%s: %s %s %s", r.Secret, r.Registration, r.InstanceID, r.PingStatus)
	}
	for _, r := range st.Reasons {
		d.t.got("reason: %s", r)
	}
	if st.Verdict != registration.Connected {
		return fmt.Errorf("status %q (%s), want %q", st.Verdict, strings.Join(st.Reasons, "; "), registration.Connected)
	}
	d.t.call("eks:DeregisterCluster %s, then ssm:DeregisterManagedInstance for every instance", ClusterName)
	res, err := registration.Deregister(ctx, eksc, ssmc, ClusterName, replicas)
	if err != nil {
		return err
	}
	d.t.got("cluster deregistered: %v; instances deregistered: %s", res.ClusterDeregistered, strings.Join(res.Deregistered, ", "))
	if left := d.AWS.Instances(); !res.ClusterDeregistered || len(left) != 0 {
		return fmt.Errorf("after deregistration %d managed instance(s) are left in SSM", len(left))
	}
	second, err := registration.Deregister(ctx, eksc, ssmc, ClusterName, replicas)
	if err != nil {
		return err
	}
	if second.ClusterDeregistered || len(second.Deregistered) != 0 {
		return fmt.Errorf("a second deregistration still found something: %+v", second)
	}
	d.t.ok("no managed instance left in SSM; a second run finds nothing to do")
	return nil
}
