package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushOptions are the inputs of pushAll.
type pushOptions struct {
	// In is the directory holding the archives buildAll wrote.
	In string
	// Registry is the repository prefix pushed to: <Registry>/<name>:<Tag>.
	Registry string
	// Tag is the tag pushed (default: the tag each archive was built with, its version).
	Tag string
	// Keychain finds the registry's credentials (docker's config.json and credential helpers).
	Keychain authn.Keychain
	// Transport is the HTTP transport (default http.DefaultTransport).
	Transport http.RoundTripper
}

// pushed is one index pushed by pushAll.
type pushed struct {
	Ref    name.Tag
	Digest v1.Hash
}

// pushAll pushes the multi-platform index of every binary from its archive and returns the
// references with their digests, the same digests the archives hold.
func pushAll(ctx context.Context, opts pushOptions) ([]pushed, error) {
	if opts.Registry == "" {
		return nil, fmt.Errorf("no registry: pass REGISTRY=<registry>/<path>, e.g. REGISTRY=ghcr.io/your-org")
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	var out []pushed
	for _, b := range binaries {
		path := filepath.Join(opts.In, b.Name+".tar")
		if _, err := os.Stat(path); err != nil {
			return out, fmt.Errorf("%s: %w (run make images first)", path, err)
		}
		a, err := readArchive(path, "")
		if err != nil {
			return out, err
		}
		p, err := pushOne(ctx, opts, b, a)
		_ = os.RemoveAll(a.Dir)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

func pushOne(ctx context.Context, opts pushOptions, b binary, a *archive) (pushed, error) {
	tag := opts.Tag
	if tag == "" {
		built, err := name.NewTag(a.Ref)
		if err != nil {
			return pushed{}, fmt.Errorf("archive of %s names %q: %w", b.Name, a.Ref, err)
		}
		tag = built.TagStr()
	}
	ref, err := name.NewTag(strings.TrimSuffix(opts.Registry, "/") + "/" + b.Name + ":" + tag)
	if err != nil {
		return pushed{}, fmt.Errorf("REGISTRY=%q TAG=%q: %w", opts.Registry, tag, err)
	}
	if err := remote.WriteIndex(ref, a.Index, remote.WithContext(ctx),
		remote.WithAuthFromKeychain(opts.Keychain), remote.WithTransport(opts.Transport)); err != nil {
		return pushed{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := a.Index.Digest()
	if err != nil {
		return pushed{}, err
	}
	return pushed{Ref: ref, Digest: d}, nil
}
