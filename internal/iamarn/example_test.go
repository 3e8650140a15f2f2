package iamarn_test

import (
	"fmt"

	"github.com/ekslink/ekslink/internal/iamarn"
)

func ExampleParse() {
	p, err := iamarn.Parse("arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Kind, p.Canonical(), p.SessionName)
	// Output: assumed-role arn:aws:iam::111122223333:role/Admin alice@example.com
}
