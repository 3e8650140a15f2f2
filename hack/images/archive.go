package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations of the index.json entry. containerd's "ctr image import" names the image after
// io.containerd.image.name (containerd/client/import.go); the OCI layout spec's ref.name holds
// the tag (containerd's own exporter and "docker save" write both the same way).
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// dockerManifest is one entry of manifest.json, the "docker save" format that "docker load"
// reads (moby daemon/images tarexport, load.go) and go-containerregistry's tarball package
// reads and writes.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeArchive writes idx to path (atomically: a temporary file renamed over it) as one tar that
// both import paths accept:
//
//   - an OCI image layout (oci-layout, index.json, blobs/sha256/...) whose index.json names the
//     multi-platform index ref: what containerd's "ctr image import" reads, preferring it over
//     manifest.json when oci-layout is present (containerd images/archive/importer.go); it keeps
//     the platform of the machine importing (or every platform with --all-platforms), which is
//     why every image config and index entry carries its platform;
//   - a manifest.json listing the loadPlatform image alone under ref: what "docker load" reads
//     with the classic image store (moby image/tarexport/load.go: it loads every entry and tags
//     each in turn, so with one entry per platform the last would take the tag whatever the
//     machine). Docker's containerd image store imports through containerd, like ctr.
//
// Every entry has the same time and owner, so the same index gives the same bytes.
func writeArchive(path string, ref name.Tag, idx v1.ImageIndex, loadPlatform platform, created time.Time) (err error) {
	idxDigest, err := idx.Digest()
	if err != nil {
		return err
	}
	rawIdx, err := idx.RawManifest()
	if err != nil {
		return err
	}
	blobs := map[string]func() (io.ReadCloser, error){
		idxDigest.Hex: bytesOpener(rawIdx),
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	var docker []dockerManifest
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return err
		}
		raw, err := img.RawManifest()
		if err != nil {
			return err
		}
		blobs[desc.Digest.Hex] = bytesOpener(raw)
		cfgName, err := img.ConfigName()
		if err != nil {
			return err
		}
		rawCfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		blobs[cfgName.Hex] = bytesOpener(rawCfg)
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		entry := dockerManifest{Config: "blobs/sha256/" + cfgName.Hex, RepoTags: []string{ref.Name()}}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			blobs[d.Hex] = l.Compressed
			entry.Layers = append(entry.Layers, "blobs/sha256/"+d.Hex)
		}
		if desc.Platform != nil && desc.Platform.OS == loadPlatform.OS && desc.Platform.Architecture == loadPlatform.Architecture {
			docker = append(docker, entry)
		}
	}
	if len(docker) != 1 {
		return fmt.Errorf("%s: want one image for %s in the index, found %d", ref, loadPlatform, len(docker))
	}
	indexJSON, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIImageIndex, Digest: idxDigest, Size: int64(len(rawIdx)),
			Annotations: map[string]string{annotationImageName: ref.Name(), annotationRefName: ref.TagStr()},
		}},
	})
	if err != nil {
		return err
	}
	manifestJSON, err := json.Marshal(docker)
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	tw := tar.NewWriter(tmp)
	add := func(name string, mode int64, open func() (io.ReadCloser, error)) error {
		hdr := &tar.Header{Name: name, Mode: mode, ModTime: created, Format: tar.FormatPAX}
		if open == nil {
			hdr.Typeflag = tar.TypeDir
			return tw.WriteHeader(hdr)
		}
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	}
	if err := add("oci-layout", 0o644, bytesOpener([]byte(`{"imageLayoutVersion":"1.0.0"}`))); err != nil {
		return err
	}
	if err := add("index.json", 0o644, bytesOpener(indexJSON)); err != nil {
		return err
	}
	if err := add("manifest.json", 0o644, bytesOpener(manifestJSON)); err != nil {
		return err
	}
	if err := add("blobs/", 0o755, nil); err != nil {
		return err
	}
	if err := add("blobs/sha256/", 0o755, nil); err != nil {
		return err
	}
	hexes := make([]string, 0, len(blobs))
	for h := range blobs {
		hexes = append(hexes, h)
	}
	slices.Sort(hexes)
	for _, h := range hexes {
		if err := add("blobs/sha256/"+h, 0o644, blobs[h]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// archive is an archive written by writeArchive, unpacked into a directory.
type archive struct {
	// Dir holds the unpacked OCI layout (remove it when done).
	Dir string
	// Ref is the name the archive's index.json gives the index.
	Ref string
	// Index is the multi-platform index, read through go-containerregistry's layout package.
	Index v1.ImageIndex
}

// readArchive unpacks the tar at path into a new directory under tmpDir and opens its OCI layout.
func readArchive(path, tmpDir string) (*archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp(tmpDir, "ekslink-image-")
	if err != nil {
		return nil, err
	}
	a := &archive{Dir: dir}
	if err := untar(f, dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%s is not an OCI image layout: %w", path, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	im, err := top.IndexManifest()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if len(im.Manifests) != 1 || im.Manifests[0].MediaType != types.OCIImageIndex {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: index.json should name exactly one image index, found %d entries", path, len(im.Manifests))
	}
	a.Ref = im.Manifests[0].Annotations[annotationImageName]
	if a.Index, err = top.ImageIndex(im.Manifests[0].Digest); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return a, nil
}

// untar extracts regular files and directories into dir, refusing names that leave it.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fs.ValidPath(strings.TrimSuffix(hdr.Name, "/")) {
			return fmt.Errorf("archive entry %q is outside the archive", hdr.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				_ = out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("archive entry %q has unexpected type %q", hdr.Name, hdr.Typeflag)
		}
	}
}
