package awsfake_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/ekslink/ekslink/envtest/awsfake"
)

// The access-entry operations through the SDK's EKS client: what EKS refuses is refused with EKS's
// error codes (typed by the SDK), requests signed with unknown credentials are refused, and an
// injected fault answers once.
func TestAccessEntryOperationsAnswerAsEKSDoes(t *testing.T) {
	ctx := context.Background()
	set, err := awsfake.Start(awsfake.Options{})
	require.NoError(t, err)
	t.Cleanup(set.Close)
	set.AddCluster(awsfake.EKSCluster{Name: "api", Endpoint: "https://127.0.0.1:6443", CAPEM: set.CAPEM(), AuthenticationMode: "API"})
	set.AddCluster(awsfake.EKSCluster{Name: "cm", Endpoint: "https://127.0.0.1:6443", CAPEM: set.CAPEM(), AuthenticationMode: "CONFIG_MAP"})
	client := eks.NewFromConfig(set.Config(), func(o *eks.Options) { o.BaseEndpoint = aws.String(set.EKS.URL) })
	role := "arn:aws:iam::111122223333:role/r"

	out, err := client.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String("api")})
	require.NoError(t, err)
	require.Equal(t, ekstypes.AuthenticationModeApi, out.Cluster.AccessConfig.AuthenticationMode)
	require.Equal(t, ekstypes.ClusterStatusActive, out.Cluster.Status)

	code := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}
	_, err = client.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: aws.String("cm"), PrincipalArn: aws.String(role)})
	require.Equal(t, "InvalidRequestException", code(err), "%v", err)
	_, err = client.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: aws.String("api"), PrincipalArn: aws.String(role), KubernetesGroups: []string{"system:masters"}})
	var invalid *ekstypes.InvalidParameterException
	require.ErrorAs(t, err, &invalid)
	_, err = client.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: aws.String("api"), PrincipalArn: aws.String(role), Type: aws.String("EC2_LINUX"), Username: aws.String("me")})
	require.ErrorAs(t, err, &invalid)

	_, err = client.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: aws.String("api"), PrincipalArn: aws.String(role)})
	require.NoError(t, err)
	_, err = client.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: aws.String("api"), PrincipalArn: aws.String(role)})
	var inUse *ekstypes.ResourceInUseException
	require.ErrorAs(t, err, &inUse)

	policy := "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
	_, err = client.DisassociateAccessPolicy(ctx, &eks.DisassociateAccessPolicyInput{ClusterName: aws.String("api"), PrincipalArn: aws.String(role), PolicyArn: aws.String(policy)})
	var notFound *ekstypes.ResourceNotFoundException
	require.ErrorAs(t, err, &notFound)
	_, err = client.DeleteAccessEntry(ctx, &eks.DeleteAccessEntryInput{ClusterName: aws.String("api"), PrincipalArn: aws.String("arn:aws:iam::111122223333:role/none")})
	require.ErrorAs(t, err, &notFound)

	set.Fail("DeleteAccessEntry", 1, http.StatusForbidden, "AccessDeniedException", "User is not authorized to perform: eks:DeleteAccessEntry")
	_, err = client.DeleteAccessEntry(ctx, &eks.DeleteAccessEntryInput{ClusterName: aws.String("api"), PrincipalArn: aws.String(role)})
	var denied *ekstypes.AccessDeniedException
	require.ErrorAs(t, err, &denied)
	_, err = client.DeleteAccessEntry(ctx, &eks.DeleteAccessEntryInput{ClusterName: aws.String("api"), PrincipalArn: aws.String(role)})
	require.NoError(t, err)

	// Credentials the endpoint does not know: refused before any handler runs.
	bad := set.Config()
	bad.Credentials = credentials.NewStaticCredentialsProvider("AKIDUNKNOWN000000000", "wrong", "")
	_, err = eks.NewFromConfig(bad, func(o *eks.Options) { o.BaseEndpoint = aws.String(set.EKS.URL) }).
		ListAccessEntries(ctx, &eks.ListAccessEntriesInput{ClusterName: aws.String("api")})
	require.Equal(t, "InvalidClientTokenId", code(err), "%v", err)
	require.Empty(t, set.AccessEntries("api"))
}
