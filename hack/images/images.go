package main

import "fmt"

// binaries is every image "make images" builds, one line per binary. Name is the image name (the last path element of its repository), the binary's name in
// the image and its entrypoint; Package is what "go build" compiles, relative to the repository
// root.
var binaries = []binary{
	{Name: "eks-connector", Package: "./cmd/eks-connector", Description: "The EKS Connector on ekslink: registration init container and impersonating proxy"},
	{Name: "pod-identity-agent", Package: "./cmd/pod-identity-agent", Description: "The EKS Pod Identity agent on ekslink"},
	{Name: "ekslink", Package: "./cmd/ekslink", Description: "The ekslink command line: EKS tokens and kubeconfigs, aws-auth, console access, self-hosted IRSA"},
	{Name: "pod-identity-webhook", Package: "./cmd/pod-identity-webhook", Description: "The pod identity webhook on ekslink: IRSA and container-credentials pod mutation"},
}

// platforms are the platforms every image is built for, in index order.
var platforms = []platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
}

// binary is one image to build.
type binary struct {
	Name        string
	Package     string
	Description string
}

// platform is an OS/architecture pair as the OCI image spec names it.
type platform struct {
	OS           string
	Architecture string
	Variant      string
}

func (p platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Architecture
	}
	return p.OS + "/" + p.Architecture + "/" + p.Variant
}

// parsePlatform accepts os/arch[/variant] for one of the platforms above.
func parsePlatform(s string) (platform, error) {
	for _, p := range platforms {
		if s == p.String() || s == p.OS+"/"+p.Architecture {
			return p, nil
		}
	}
	return platform{}, fmt.Errorf("platform %q: want one of %v", s, platforms)
}

// Image configuration shared by every image.
const (
	// defaultPrefix is the repository prefix of the images' names in the archives, and the
	// charts' and renderer's default: ekslink has no official registry yet, and "localhost"
	// says the image was built locally (no registry on the internet serves it).
	defaultPrefix = "localhost/ekslink"
	// binDir holds the binary; it is also the image's PATH.
	binDir = "/usr/local/bin"
	// caFile is where Go's crypto/x509 looks first on Linux for the system roots.
	caFile = "/etc/ssl/certs/ca-certificates.crt"
	// nonRootUser is the image user of every image: uid and gid 65532 ("nonroot", as in the
	// distroless images). Workloads that need root say so in their pod spec: the connector's init
	// and proxy containers and both pod identity agent containers set runAsUser: 0 with their
	// exact capabilities (manifest vaultContext and capabilityContext), which
	// overrides this user; everything else (the ekslink CLI, the webhook) runs as 65532.
	nonRootUser = "65532:65532"
	// licenses is the SPDX expression of the LICENSE file.
	licenses = "Apache-2.0"
)
