package rbac_test

import (
	"fmt"

	"github.com/ekslink/ekslink/impersonation/rbac"
)

// The default role is the RBAC AWS documents for the EKS Connector: impersonate on users, limited
// to the granted ARNs. UserExtras would add userextras/arn and userextras/sessionname.
func ExampleImpersonationClusterRole() {
	objs, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{
		ARNs: []string{"arn:aws:iam::111122223333:role/console-viewer"},
	})
	if err != nil {
		panic(err)
	}
	y, _ := objs.YAML()
	fmt.Print(string(y))
	// Output:
	// apiVersion: rbac.authorization.k8s.io/v1
	// kind: ClusterRole
	// metadata:
	//   labels:
	//     app.kubernetes.io/managed-by: ekslink
	//   name: eks-connector-impersonation
	// rules:
	// - apiGroups:
	//   - ""
	//   resourceNames:
	//   - arn:aws:iam::111122223333:role/console-viewer
	//   resources:
	//   - users
	//   verbs:
	//   - impersonate
	// ---
	// apiVersion: rbac.authorization.k8s.io/v1
	// kind: ClusterRoleBinding
	// metadata:
	//   labels:
	//     app.kubernetes.io/managed-by: ekslink
	//   name: eks-connector-impersonation
	// roleRef:
	//   apiGroup: rbac.authorization.k8s.io
	//   kind: ClusterRole
	//   name: eks-connector-impersonation
	// subjects:
	// - kind: ServiceAccount
	//   name: eks-connector
	//   namespace: eks-connector
}

func ExampleConsoleRBAC() {
	objs, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{
		ARNs:       []string{"arn:aws:iam::111122223333:user/Alice"},
		Namespaces: []string{"default"},
	})
	if err != nil {
		panic(err)
	}
	for _, b := range objs.RoleBindings {
		fmt.Println(b.Namespace, b.Name, "->", b.RoleRef.Kind, b.RoleRef.Name, b.Subjects[0].Name)
	}
	// Output:
	// default ekslink-console-read -> ClusterRole ekslink-console-read arn:aws:iam::111122223333:user/Alice
}
