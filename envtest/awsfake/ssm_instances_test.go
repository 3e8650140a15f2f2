package awsfake_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ekslink/ekslink/envtest/awsfake"
)

// DescribeInstanceInformation and DeregisterManagedInstance through the SDK's SSM client: the
// Filters keys of the SSM API reference, pages (the SDK's paginator follows NextToken), ping status
// from the recorded heartbeat, InvalidFilterKey and InvalidInstanceId in their real shapes, and no
// anonymous access (only RegisterManagedInstance is anonymous).
func TestManagedInstanceOperations(t *testing.T) {
	set, err := awsfake.Start(awsfake.Options{RegistrationLimit: 10})
	require.NoError(t, err)
	t.Cleanup(set.Close)
	ctx := context.Background()
	ekc := eks.NewFromConfig(set.Config(), func(o *eks.Options) { o.BaseEndpoint = aws.String(set.EKS.URL) })
	reg, err := ekc.RegisterCluster(ctx, &eks.RegisterClusterInput{Name: aws.String("c"),
		ConnectorConfig: &ekstypes.ConnectorConfigRequest{Provider: ekstypes.ConnectorConfigProviderOther, RoleArn: aws.String("arn:aws:iam::111122223333:role/a")}})
	require.NoError(t, err)
	act, code := *reg.Cluster.ConnectorConfig.ActivationId, *reg.Cluster.ConnectorConfig.ActivationCode
	key := newKey(t)
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	require.NoError(t, err)
	var ids []string
	for range 7 {
		status, out := registerManagedInstance(t, set, act, code, uuid.NewString(), pub)
		require.Equal(t, 200, status, out)
		ids = append(ids, out["InstanceId"])
	}
	require.True(t, set.Ping(ids[0], "3.3.1142.0"))

	client := ssm.NewFromConfig(set.Config(), func(o *ssm.Options) { o.BaseEndpoint = aws.String(set.SSM.URL) })
	var all []ssmtypes.InstanceInformation
	p := ssm.NewDescribeInstanceInformationPaginator(client, &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(5),
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("ActivationIds"), Values: []string{act}}}})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		all = append(all, page.InstanceInformationList...)
		pages++
	}
	require.Len(t, all, 7)
	require.Equal(t, 2, pages)
	require.Equal(t, ssmtypes.PingStatusOnline, all[0].PingStatus)
	require.Equal(t, "3.3.1142.0", aws.ToString(all[0].AgentVersion))
	require.NotNil(t, all[0].LastPingDateTime)
	require.Equal(t, ssmtypes.PingStatusConnectionLost, all[1].PingStatus)

	out, err := client.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{ids[3], "mi-00000000000000000"}}}})
	require.NoError(t, err)
	require.Len(t, out.InstanceInformationList, 1)

	_, err = client.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("Colour"), Values: []string{"x"}}}})
	var badKey *ssmtypes.InvalidFilterKey
	require.True(t, errors.As(err, &badKey), "%v", err)

	_, err = client.DeregisterManagedInstance(ctx, &ssm.DeregisterManagedInstanceInput{InstanceId: aws.String(ids[3])})
	require.NoError(t, err)
	_, err = client.DeregisterManagedInstance(ctx, &ssm.DeregisterManagedInstanceInput{InstanceId: aws.String(ids[3])})
	var gone *ssmtypes.InvalidInstanceId
	require.True(t, errors.As(err, &gone), "%v", err)
	require.Len(t, set.Instances(), 6)

	req, _ := http.NewRequest(http.MethodPost, set.SSM.URL+"/", bytes.NewReader([]byte(`{"InstanceId":"`+ids[0]+`"}`)))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.DeregisterManagedInstance")
	resp, err := set.SSM.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode)
	require.Len(t, set.Instances(), 6, "an unsigned request deregistered an instance")

	set.Fail("DeregisterManagedInstance", 1, 400, "AccessDeniedException", "User is not authorized to perform: ssm:DeregisterManagedInstance")
	_, err = client.DeregisterManagedInstance(ctx, &ssm.DeregisterManagedInstanceInput{InstanceId: aws.String(ids[0])})
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException", "%v", err)
	require.Equal(t, 4, set.Calls("DeregisterManagedInstance"))
}
