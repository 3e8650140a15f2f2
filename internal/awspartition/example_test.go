package awspartition_test

import (
	"fmt"

	"github.com/ekslink/ekslink/internal/awspartition"
)

func ExampleForRegion() {
	for _, region := range []string{"eu-west-1", "cn-north-1", "us-gov-west-1", "eusc-de-east-1"} {
		p, err := awspartition.ForRegion(region)
		if err != nil {
			panic(err)
		}
		fmt.Println(region, p.ID, p.DNSSuffix)
	}
	_, err := awspartition.ForRegion("")
	fmt.Println(err)
	// Output:
	// eu-west-1 aws amazonaws.com
	// cn-north-1 aws-cn amazonaws.com.cn
	// us-gov-west-1 aws-us-gov amazonaws.com
	// eusc-de-east-1 aws-eusc amazonaws.eu
	// awspartition: no region given: set one explicitly (there is no default)
}
