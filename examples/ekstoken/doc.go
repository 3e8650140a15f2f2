// Command ekstoken is an example of reaching an EKS cluster from your own program with no CLIs
// (a deployment pipeline step, a Lambda-style job): it builds a rest.Config for the cluster from
// the process's AWS configuration with eksauth.RESTConfig (EKS DescribeCluster for the endpoint
// and CA, and a k8s-aws-v1 token that renews itself before it expires), lists the pods of a
// namespace with client-go; or it prints a kubeconfig for the steps after it, whose exec plugin is
// "ekslink token".
//
//	ekstoken --cluster-name=prod --namespace=apps
//	ekstoken --cluster-name=prod --print-kubeconfig > kubeconfig
//
// It deliberately does not map the caller into the cluster: grant its IAM principal access with an
// access entry or aws-auth first (ekslink access, ekslink aws-auth). The example is free of
// internal/ packages, so it can be copied out of this repository.
package main
