// Package awsauth checks that what package awsauth reads and writes is what
// aws-iam-authenticator's own ParseMap (sigs.k8s.io/aws-iam-authenticator pkg/mapper/configmap)
// reads from the aws-auth ConfigMap, through awsauth's exported API only.
package awsauth
