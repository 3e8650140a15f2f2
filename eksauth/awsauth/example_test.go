package awsauth_test

import (
	"fmt"

	"github.com/ekslink/ekslink/eksauth/awsauth"
)

func ExampleConfig_UpsertRole() {
	orig, err := awsauth.ParseData(map[string]string{
		"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/admin\n  username: admin\n  groups: [system:masters]\n",
	})
	if err != nil {
		panic(err)
	}
	c := orig.Clone()
	changed, warnings, err := c.UpsertRole(awsauth.RoleMapping{
		RoleARN:  "arn:aws:iam::111122223333:role/pipelines/ci",
		Username: "ci:{{SessionName}}",
		Groups:   []string{"deployers"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(changed, warnings)
	fmt.Print(c.Data(orig)["mapRoles"])
	// Output:
	// true [role path "/pipelines/" stripped from arn:aws:iam::111122223333:role/pipelines/ci: aws-auth matches arn:aws:iam::111122223333:role/ci (STS drops role paths)]
	// - rolearn: arn:aws:iam::111122223333:role/admin
	//   username: admin
	//   groups: [system:masters]
	// - rolearn: arn:aws:iam::111122223333:role/ci
	//   username: ci:{{SessionName}}
	//   groups:
	//   - deployers
}
