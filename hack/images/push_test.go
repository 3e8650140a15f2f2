package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPushToAnInProcessRegistry pushes the built archives to go-containerregistry's registry on
// loopback and pulls them back: one multi-platform tag per binary, with the digests the archives
// hold, and each platform's image resolvable the way a kubelet resolves it.
func TestPushToAnInProcessRegistry(t *testing.T) {
	_, images := buildShared(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	var stdout bytes.Buffer
	err := run(ctx, []string{"push", "-in", shared.dir, "-registry", host + "/team", "-tag", "v9.9.9"}, &stdout, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(images) {
		t.Fatalf("push printed %q", stdout.String())
	}
	for i, b := range images {
		ref, err := name.NewTag(host + "/team/" + b.Binary.Name + ":v9.9.9")
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.Name() + "@" + b.Digest.String(); lines[i] != want {
			t.Errorf("printed %q, want %q", lines[i], want)
		}
		idx, err := remote.Index(ref, remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := idx.Digest(); d != b.Digest {
			t.Errorf("%s: registry has %s, built %s", ref, d, b.Digest)
		}
		for _, p := range platforms {
			img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: p.OS, Architecture: p.Architecture}))
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Architecture != p.Architecture || cf.Config.Entrypoint[0] != "/usr/local/bin/"+b.Binary.Name {
				t.Errorf("%s %s: config %s %v", ref, p, cf.Architecture, cf.Config.Entrypoint)
			}
		}
	}

	// Without TAG, the archives' own tag (the version) is pushed.
	got, err := pushAll(ctx, pushOptions{In: shared.dir, Registry: host + "/default", Keychain: authn.DefaultKeychain})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Ref.TagStr() != testVersion {
		t.Errorf("default tag %q, want %q", got[0].Ref.TagStr(), testVersion)
	}
}

func TestPushNeedsARegistryAndArchives(t *testing.T) {
	ctx := context.Background()
	if _, err := pushAll(ctx, pushOptions{In: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "REGISTRY=") {
		t.Errorf("no registry: err = %v", err)
	}
	if _, err := pushAll(ctx, pushOptions{In: t.TempDir(), Registry: "127.0.0.1:1/x"}); err == nil || !strings.Contains(err.Error(), "make images") {
		t.Errorf("no archives: err = %v", err)
	}
}
