package awsfake_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ekslink/ekslink/envtest/awsfake"
)

// The AWS SDK talks to the embedded endpoints unchanged: only the endpoint is overridden.
func ExampleStart() {
	set, err := awsfake.Start(awsfake.Options{})
	if err != nil {
		panic(err)
	}
	defer set.Close()
	client := sts.NewFromConfig(set.Config(), func(o *sts.Options) { o.BaseEndpoint = aws.String(set.STS.URL) })
	id, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		panic(err)
	}
	fmt.Println(aws.ToString(id.Arn))
	// Output: arn:aws:iam::111122223333:user/ekslink-demo
}
