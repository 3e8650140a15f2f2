// Command podidentityserver is an example of embedding the EKS Pod Identity credential server in
// your own program, for example a node daemon that already runs on every machine: it builds the
// EKS Auth client with podidentity.NewFromConfig from the process's AWS configuration (the node's
// credentials) and serves the container credentials endpoint that the AWS SDKs in pods call
// (AWS_CONTAINER_CREDENTIALS_FULL_URI with the pod's service-account token as
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
//
//	podidentityserver --cluster-name=prod --listen=169.254.170.23:80
//
// It deliberately does not set up the link-local address, health and metrics endpoints or the
// hybrid-node credentials file: cmd/pod-identity-agent does all of that. The example is free of
// internal/ packages, so it can be copied out of this repository.
package main
