package awstest_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// A capability test adds its operation handlers; the server has already verified the SigV4
// signature with the SDK's signer by the time a handler runs.
func ExampleNewServer() {
	s := awstest.NewServer(awstest.Options{Service: "sts", Protocol: awstest.Query})
	defer s.Close()
	s.HandleAction("GetCallerIdentity", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
			`<Arn>arn:aws:iam::111122223333:user/test</Arn><UserId>AIDA</UserId><Account>111122223333</Account>`+
			`</GetCallerIdentityResult></GetCallerIdentityResponse>`)
	})
	out, err := sts.NewFromConfig(s.Config()).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		panic(err)
	}
	fmt.Println(aws.ToString(out.Arn), len(s.Requests()))
	// Output: arn:aws:iam::111122223333:user/test 1
}
