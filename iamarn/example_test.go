package iamarn_test

import (
	"errors"
	"fmt"

	"github.com/ekslink/ekslink/iamarn"
)

func ExampleParse() {
	p, err := iamarn.Parse("arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Kind, p.Canonical(), p.SessionName)

	_, err = iamarn.Parse("arn:aws:iam::111122223333:group/Admins")
	fmt.Println(errors.Is(err, iamarn.ErrInvalid))
	// Output:
	// assumed-role arn:aws:iam::111122223333:role/Admin alice@example.com
	// true
}

func ExamplePartitionForRegion() {
	for _, region := range []string{"eu-west-1", "cn-north-1", "us-gov-west-1", "eusc-de-east-1"} {
		p, err := iamarn.PartitionForRegion(region)
		if err != nil {
			panic(err)
		}
		fmt.Println(region, p.ID, p.DNSSuffix)
	}
	_, err := iamarn.PartitionForRegion("")
	fmt.Println(err)
	// Output:
	// eu-west-1 aws amazonaws.com
	// cn-north-1 aws-cn amazonaws.com.cn
	// us-gov-west-1 aws-us-gov amazonaws.com
	// eusc-de-east-1 aws-eusc amazonaws.eu
	// iamarn: no region given: set one explicitly (there is no default)
}
