// Package awstest runs local HTTP servers that stand in for AWS service endpoints in tests.
//
// A Server verifies every request's SigV4 signature with aws-sdk-go-v2's own signer (service name,
// region, credential scope, signed headers, payload hash, clock skew), both in the Authorization
// header and in presigned query strings, and answers errors in the exact shape of the service's
// protocol (awsJson1.1, restJson1, awsQuery, restXml). Capability tests add only their operation
// handlers: HandleTarget for JSON 1.x targets, HandleAction for query actions, Handle for REST paths.
//
// Point SDK clients at it through aws.Config.BaseEndpoint (Config does that), never by patching
// production code.
package awstest
