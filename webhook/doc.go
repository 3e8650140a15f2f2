// Package webhook is the pod mutation half of IRSA and EKS Pod Identity on any cluster: a
// drop-in for aws/amazon-eks-pod-identity-webhook, as a library.
//
// Mutate is the whole mutation as a pure function over (pod, service account, Config): it picks the
// mode (container credentials when the identities file lists the service account, or, with
// Options.Associations, an EKS Pod Identity association of podidentity/association; IRSA when the
// service account has an eks.amazonaws.com/role-arn annotation or the pod-identity-webhook
// ConfigMap an entry for it; else none) and returns the same JSON Patch as the upstream webhook for
// the same inputs: the AWS_* variables, the projected token volume and its mount, in every init
// container and container not named in eks.amazonaws.com/skip-containers, with the upstream's
// precedence for audience, regional STS and expiration. Where the upstream mutated with a fallback
// after logging an invalid annotation, Mutate returns an *AnnotationError and no patch.
//
// Handler serves it as a mutating admission webhook (AdmissionReview v1 and v1beta1 on /mutate):
// each pod's service account is read live (a bounded GET shared by concurrent pods of the account,
// never one that started before the pod arrived), so that a pod created right after its service
// account was created, annotated, re-annotated or stripped gets the account's current
// configuration; the informer cache answers only when the API server does not in time. It never
// blocks a pod by itself.
//
// SelfCerts gives it a serving certificate with no manual step: its own CA and serving certificate
// kept in a Secret, rotated at 2/3 of their life (CAs overlapping in the caBundle), the caBundle set
// on its own MutatingWebhookConfiguration's webhooks, served through tls.Config.GetCertificate.
//
// It does not create the MutatingWebhookConfiguration or manage the OIDC issuer (see package
// oidc); cmd/pod-identity-webhook is the binary.
package webhook
