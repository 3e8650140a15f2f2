package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// sourceURL is the org.opencontainers.image.source label.
const sourceURL = "https://github.com/ekslink/ekslink"

// file is one entry of a layer.
type file struct {
	name string // without a leading slash; directories end in "/"
	mode int64
	data []byte
}

// layerOf returns an OCI layer (gzip) holding files with root ownership and every time set to
// created, so the same files give the same digest.
func layerOf(files []file, created time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, ModTime: created, Format: tar.FormatPAX}
		if strings.HasSuffix(f.name, "/") {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// caBundle is the PEM file of the NSS trust store's roots as golang.org/x/crypto/x509roots/fallback
// (pinned in go.mod) carries them: the same roots on every machine, so the base layer's digest
// does not depend on the build machine's ca-certificates package. Roots with constraints that a
// PEM file cannot express (distrust-after dates) are left out rather than trusted without them.
func caBundle() ([]byte, int, error) {
	var buf bytes.Buffer
	n := 0
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, 0, err
		}
		n++
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("x509roots/fallback/bundle has no unconstrained roots")
	}
	return buf.Bytes(), n, nil
}

// baseLayer is what every image shares under its binary: the CA roots and the passwd and group
// entries of root and nonroot (for programs that look their user up).
func baseLayer(created time.Time) (v1.Layer, error) {
	ca, _, err := caBundle()
	if err != nil {
		return nil, err
	}
	return layerOf([]file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(caFile, "/"), mode: 0o644, data: ca},
	}, created)
}

// binaryLayer holds the binary at binDir/name.
func binaryLayer(name, binPath string, created time.Time) (v1.Layer, error) {
	data, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	var files []file
	for d := strings.TrimPrefix(binDir, "/"); d != "."; d = path.Dir(d) {
		files = append([]file{{name: d + "/", mode: 0o755}}, files...)
	}
	files = append(files, file{name: strings.TrimPrefix(binDir, "/") + "/" + name, mode: 0o755, data: data})
	return layerOf(files, created)
}

// labels are the org.opencontainers.image.* annotations of every image.
func labels(src source, b binary) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       b.Name,
		"org.opencontainers.image.description": b.Description,
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.url":         sourceURL,
		"org.opencontainers.image.revision":    src.Revision,
		"org.opencontainers.image.version":     src.Version,
		"org.opencontainers.image.licenses":    licenses,
		"org.opencontainers.image.created":     src.Created.Format(time.RFC3339),
	}
}

// platformImage assembles one platform's image: base layer, binary layer, and a config with the
// platform, the binary as entrypoint, the non-root user, the labels and the fixed time.
func platformImage(src source, b binary, p platform, base v1.Layer, binPath string) (v1.Image, error) {
	bin, err := binaryLayer(b.Name, binPath, src.Created)
	if err != nil {
		return nil, err
	}
	at := v1.Time{Time: src.Created}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: at, CreatedBy: "ekslink hack/images: CA roots (golang.org/x/crypto/x509roots/fallback), /etc/passwd, /etc/group",
		}},
		mutate.Addendum{Layer: bin, MediaType: types.OCILayer, History: v1.History{
			Created: at, CreatedBy: "ekslink hack/images: go build " + b.Package + " (CGO_ENABLED=0 -trimpath)",
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", b.Name, p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = at
	cf.Config = v1.Config{
		Entrypoint: []string{binDir + "/" + b.Name},
		User:       nonRootUser,
		Env:        []string{"PATH=" + binDir},
		WorkingDir: "/",
		Labels:     labels(src, b),
	}
	return mutate.ConfigFile(img, cf)
}

// imageIndex is the multi-platform index of one binary's images, with the labels as annotations.
func imageIndex(src source, b binary, images map[platform]v1.Image) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		img, ok := images[p]
		if !ok {
			return nil, fmt.Errorf("%s: no image for %s", b.Name, p)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, labels(src, b)).(v1.ImageIndex), nil
}
