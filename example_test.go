package ekslink_test

import (
	"fmt"

	"github.com/ekslink/ekslink/impersonation"
	"github.com/ekslink/ekslink/impersonation/rbac"
)

// The packages compose: the identity the connector's proxy impersonates is exactly what the
// rendered impersonation ClusterRole allows, and nothing else.
func Example() {
	arn := "arn:aws:sts::111122223333:assumed-role/Admin/alice"
	p, err := impersonation.ParseARN(arn)
	if err != nil {
		panic(err)
	}
	id, err := impersonation.DefaultMapper(p)
	if err != nil {
		panic(err)
	}
	objs, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{ARNs: []string{arn}})
	if err != nil {
		panic(err)
	}
	role := objs.ClusterRoles[0]
	fmt.Println("Impersonate-User:", id.User)
	fmt.Println("may impersonate:", role.Rules[0].Resources, role.Rules[0].ResourceNames)
	_, err = impersonation.ParseARN("system:masters")
	fmt.Println("system:masters refused:", err != nil)
	// Output:
	// Impersonate-User: arn:aws:sts::111122223333:assumed-role/Admin/alice
	// may impersonate: [users] [arn:aws:sts::111122223333:assumed-role/Admin/alice]
	// system:masters refused: true
}
