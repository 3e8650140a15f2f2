// Package awsjson is the small JSON-protocol core the SDK's hand-modelled AWS clients share: the SSM
// RegisterManagedInstance client (awsJson1.1, anonymous) in registration and the EKS Auth client
// (restJson1, SigV4 "eks-auth") in podidentity. Its entry point is Caller.Do: one call builds the
// request for each attempt, bounds the attempt, asks an aws.Retryer whether and when to retry (with
// the retry and attempt tokens the SDK's standard retryer hands out) and hands each complete answer
// to the client's decoder; ParseError reads the error code and message of either protocol.
package awsjson
