package registration_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eks"

	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/registration"
)

func eksServer(t *testing.T) (*awstest.Server, *eks.Client) {
	t.Helper()
	s := awstest.New(t, awstest.Options{Service: "eks", Region: "eu-west-1", Protocol: awstest.RESTJSON})
	return s, eks.NewFromConfig(s.Config())
}

func TestRegisterClusterReturnsTheActivation(t *testing.T) {
	s, client := eksServer(t)
	expiry := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var got map[string]any
	s.Handle("POST /cluster-registrations", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
		awstest.WriteJSON(w, "", map[string]any{"cluster": map[string]any{
			"name": "edge", "arn": "arn:aws:eks:eu-west-1:123456789012:cluster/edge", "status": "PENDING",
			"connectorConfig": map[string]any{"activationId": testActivationID, "activationCode": testActivationCode,
				"activationExpiry": expiry.Unix(), "provider": "OTHER", "roleArn": "arn:aws:iam::123456789012:role/eks-connector-agent"},
		}})
	})
	reg, err := registration.RegisterCluster(context.Background(), client, registration.ClusterSpec{
		Name: "edge", RoleARN: "arn:aws:iam::123456789012:role/eks-connector-agent", Tags: map[string]string{"team": "platform"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Activation.ID != testActivationID || reg.Activation.Code != testActivationCode || !reg.Expiry.Equal(expiry) ||
		reg.ClusterARN != "arn:aws:eks:eu-west-1:123456789012:cluster/edge" || reg.Region != "eu-west-1" {
		t.Fatalf("registration %+v", reg)
	}
	cc, _ := got["connectorConfig"].(map[string]any)
	tags, _ := got["tags"].(map[string]any)
	if got["name"] != "edge" || cc["provider"] != "OTHER" || cc["roleArn"] != "arn:aws:iam::123456789012:role/eks-connector-agent" || tags["team"] != "platform" {
		t.Fatalf("request body %v", got)
	}
	if reqs := s.Requests(); len(reqs) != 1 || reqs[0].AccessKeyID == "" {
		t.Fatal("request not SigV4-signed")
	}
}

func TestRegisterClusterValidatesInput(t *testing.T) {
	s, client := eksServer(t)
	for name, spec := range map[string]registration.ClusterSpec{
		"empty name":       {RoleARN: "arn:aws:iam::123456789012:role/x"},
		"unknown provider": {Name: "c", Provider: "KIND", RoleARN: "arn:aws:iam::123456789012:role/x"},
		"user ARN as role": {Name: "c", RoleARN: "arn:aws:iam::123456789012:user/x"},
		"malformed ARN":    {Name: "c", RoleARN: "role/x"},
	} {
		if _, err := registration.RegisterCluster(context.Background(), client, spec); !errors.Is(err, registration.ErrInvalidInput) {
			t.Errorf("%s: got %v, want ErrInvalidInput", name, err)
		}
	}
	if len(s.Requests()) != 0 {
		t.Fatal("invalid input reached EKS")
	}
}

func TestRegisterAndDeregisterPassEKSErrorsThrough(t *testing.T) {
	s, client := eksServer(t)
	s.Handle("POST /cluster-registrations", func(w http.ResponseWriter, r *http.Request) {
		awstest.WriteRESTJSONError(w, 409, "ResourceInUseException", "cluster exists")
	})
	var deleted string
	s.Handle("DELETE /cluster-registrations/{name}", func(w http.ResponseWriter, r *http.Request) {
		deleted = r.PathValue("name")
		awstest.WriteJSON(w, "", map[string]any{"cluster": map[string]any{"name": deleted}})
	})
	_, err := registration.RegisterCluster(context.Background(), client, registration.ClusterSpec{Name: "edge", RoleARN: "arn:aws:iam::123456789012:role/x"})
	var inUse interface{ ErrorCode() string }
	if !errors.As(err, &inUse) || inUse.ErrorCode() != "ResourceInUseException" {
		t.Fatalf("got %v", err)
	}
	if err := registration.DeregisterCluster(context.Background(), client, "edge"); err != nil || deleted != "edge" {
		t.Fatalf("deregister: %v (deleted %q)", err, deleted)
	}
}
