package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/ekslink/ekslink/internal/atomicfile"
)

// ClusterAPI is the part of the EKS client EnsureCluster, ClusterStatus and Deregister use;
// *eks.Client implements it.
type ClusterAPI interface {
	EKSAPI
	DescribeCluster(ctx context.Context, in *eks.DescribeClusterInput, optFns ...func(*eks.Options)) (*eks.DescribeClusterOutput, error)
}

// ErrClusterConflict is matched by EnsureCluster's error when a cluster of that name exists with
// another connector configuration (or is not a connected cluster at all).
var ErrClusterConflict = errors.New("registration: a different cluster of that name exists")

// EnsureCluster registers the cluster unless EKS has it already. When it was registered before, the
// result's Activation.Code is empty (EKS returns the code only once) and created is false; a cluster
// of that name with another provider or role is ErrClusterConflict.
func EnsureCluster(ctx context.Context, api ClusterAPI, spec ClusterSpec) (reg *ClusterRegistration, created bool, err error) {
	if spec.Name == "" {
		return nil, false, fmt.Errorf("%w: cluster name is empty", ErrInvalidInput)
	}
	var region string
	out, err := api.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(spec.Name)}, func(o *eks.Options) { region = o.Region })
	var nf *ekstypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		reg, err := RegisterCluster(ctx, api, spec)
		return reg, err == nil, err
	case err != nil:
		return nil, false, fmt.Errorf("registration: EKS DescribeCluster %s: %w", spec.Name, err)
	}
	c := out.Cluster
	if c == nil || c.ConnectorConfig == nil {
		return nil, false, fmt.Errorf("%w: %s is an EKS cluster, not a connected one", ErrClusterConflict, spec.Name)
	}
	cc := c.ConnectorConfig
	provider := spec.Provider
	if provider == "" {
		provider = string(ekstypes.ConnectorConfigProviderOther)
	}
	if aws.ToString(cc.Provider) != provider || aws.ToString(cc.RoleArn) != spec.RoleARN {
		return nil, false, fmt.Errorf("%w: %s is registered with provider %s and role %s, not %s and %s; deregister it first or change the flags",
			ErrClusterConflict, spec.Name, aws.ToString(cc.Provider), aws.ToString(cc.RoleArn), provider, spec.RoleARN)
	}
	return &ClusterRegistration{
		ClusterARN: aws.ToString(c.Arn),
		Activation: Activation{ID: aws.ToString(cc.ActivationId)},
		Expiry:     aws.ToTime(cc.ActivationExpiry),
		Region:     region,
	}, false, nil
}

// ActivationFile is the JSON document WriteActivationFile writes: what the connector needs to
// register, in the field names of "aws eks register-cluster" output.
type ActivationFile struct {
	ClusterName      string    `json:"clusterName"`
	ClusterARN       string    `json:"clusterArn"`
	Region           string    `json:"region"`
	ActivationID     string    `json:"activationId"`
	ActivationCode   string    `json:"activationCode"`
	ActivationExpiry time.Time `json:"activationExpiry"`
}

// WriteActivationFile writes reg's activation to path atomically with mode 0600 (the activation
// code is a secret).
func WriteActivationFile(path, clusterName string, reg *ClusterRegistration) error {
	b, err := json.MarshalIndent(ActivationFile{
		ClusterName: clusterName, ClusterARN: reg.ClusterARN, Region: reg.Region,
		ActivationID: reg.Activation.ID, ActivationCode: reg.Activation.Code, ActivationExpiry: reg.Expiry,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("registration: writing the activation file: %w", err)
	}
	return nil
}

// ReadActivationFile reads a file WriteActivationFile wrote.
func ReadActivationFile(path string) (*ActivationFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f ActivationFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("registration: %s is not an activation file: %w", path, err)
	}
	return &f, nil
}
