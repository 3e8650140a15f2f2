// Package podidentity is an EKS Pod Identity agent: the node-local credential server that the AWS
// SDKs in pods reach through AWS_CONTAINER_CREDENTIALS_FULL_URI (http://169.254.170.23/v1/credentials
// or http://[fd00:ec2::23]/v1/credentials), exchanging the pod's projected service account token
// for IAM role credentials through the EKS Auth API.
//
// The entry points are NewFromConfig, which builds the EKS Auth client from an aws.Config the way
// aws-sdk-go-v2 builds its clients, and NewServer, which takes that client and ServerOptions:
//
//	client, err := podidentity.NewFromConfig(awsCfg)
//	srv, err := podidentity.NewServer(client, podidentity.ServerOptions{ClusterName: "prod"})
//	err = srv.ServeAddrs(ctx, []string{"169.254.170.23:80", "[fd00:ec2::23]:80"}, 5*time.Second)
//
// The package holds everything the agent needs and nothing else: the Server, the EKS Auth Client
// (AssumeRoleForPodIdentity; exceptions are *AuthError values matched with errors.Is against
// AuthThrottlingException and its siblings), and SharedCredentialsFile, the credentials provider
// of EKS hybrid nodes whose shared credentials file is rewritten as the node's credentials rotate.
// On clusters that are not EKS the server's Upstream is podidentity/webidentity's Backend instead
// (STS AssumeRoleWithWebIdentity, associations from podidentity/association); it reports refusals
// as *AuthError values with EKS Auth's codes and a ClientMessage, so the server treats both alike.
//
// A Server is an http.Handler plus one credential cache shared by all listeners:
//
//   - requests are checked before any upstream call: Host must be an agent address (DNS rebinding),
//     only GET /v1/credentials, the Authorization header must be a JWS with a valid exp/nbf and a
//     bounded size;
//   - the cache is keyed by the SHA-256 of the token (tokens never appear in logs or metrics), bounded
//     by an LRU, refreshed ahead of expiry from a timer heap by a small worker pool, and entries whose
//     token is no longer presented lapse instead of being refreshed forever;
//   - one upstream call per token at a time, detached from the requests that triggered it: a client
//     that hangs up does not cancel it, and every waiting client gets the same result or error;
//   - throttle answers and definitive refusals (400/403/404) are cached briefly per token, so a pod
//     retrying in a loop cannot spend the node's budget; one outbound rate budget is shared, and background
//     refreshes with time to spare only spend it while more than half of the burst is left, so cache misses win;
//   - fairness: misses for new tokens are budgeted per source (the connection's peer IP, which a pod
//     cannot choose, not the token's unverified claims), a busy source leaves more of the node's
//     budget to quiet ones, and new tokens never spend ReservedBurst, which stays for tokens EKS Auth
//     accepted before and for refreshes close to the end of the credentials, so clients flooding
//     the agent with made-up tokens cannot starve other pods or let cached credentials lapse;
//   - upstream answers are checked: Retry-After is capped at 30s, credentials that are expired (or
//     expire within ServeSkew) when they arrive are a 502, never served or cached;
//   - during an EKS Auth outage cached credentials keep being served until ServeSkew before they
//     expire; new tokens get 503 or 504 within UpstreamTimeout; readiness (ReadinessHandler) follows
//     upstream health, liveness (LivenessHandler) does not; a definitive refusal of a background
//     refresh (association deleted, access denied, token revoked) drops the cached credentials at once;
//   - errors are JSON {"code","message"} with 400/403/404/429/502/503/504 statuses;
//   - listeners do not set SO_REUSEPORT, so no other process can bind the agent's address and port
//     while it listens and receive a share of the pods' tokens;
//   - metrics go to a caller-supplied prometheus.Registerer (nil: registered nowhere).
//
// What it deliberately does not do: it does not verify token signatures (EKS Auth does, and the
// agent has no access to the cluster's keys), it does not talk to the Kubernetes API, it does not
// create the link-local addresses (cmd/pod-identity-agent init does, Linux only), and it keeps no
// state on disk: a restarted agent starts with an empty cache.
package podidentity
