package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// buildOptions are the inputs of buildAll.
type buildOptions struct {
	// Go is the go command (default "go").
	Go string
	// Out is the directory the archives are written to (created if missing).
	Out string
	// Prefix is the repository prefix of the images' names in the archives: <Prefix>/<name>.
	Prefix string
	// LoadPlatform is the platform "docker load" gets from each archive.
	LoadPlatform platform
}

// built is one image written by buildAll.
type built struct {
	Binary  binary
	Ref     name.Tag
	Digest  v1.Hash
	Archive string
}

// buildAll builds every binary for every platform and writes one archive per binary to
// opts.Out/<name>.tar, its index named <prefix>/<name>:<version>.
func buildAll(ctx context.Context, src source, opts buildOptions) ([]built, error) {
	if opts.Go == "" {
		opts.Go = "go"
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "ekslink-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	base, err := baseLayer(src.Created)
	if err != nil {
		return nil, err
	}
	var out []built
	for _, b := range binaries {
		ref, err := name.NewTag(opts.Prefix + "/" + b.Name + ":" + src.Version)
		if err != nil {
			return nil, fmt.Errorf("image name from prefix %q: %w", opts.Prefix, err)
		}
		images := map[platform]v1.Image{}
		for _, p := range platforms {
			bin, err := goBuild(ctx, opts.Go, src, b, p, work)
			if err != nil {
				return nil, err
			}
			if images[p], err = platformImage(src, b, p, base, bin); err != nil {
				return nil, err
			}
		}
		idx, err := imageIndex(src, b, images)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(opts.Out, b.Name+".tar")
		if err := writeArchive(path, ref, idx, opts.LoadPlatform, src.Created); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		d, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		out = append(out, built{Binary: b, Ref: ref, Digest: d, Archive: path})
	}
	return out, nil
}
