// Command images builds ekslink's container images without a Docker daemon and pushes them.
//
//	go run . build -root ../.. -out ../../_output/images    # make images
//	go run . push -in ../../_output/images -registry R [-tag T]  # make push REGISTRY=R TAG=T
//
// Each binary listed in images.go becomes one OCI image per platform (linux/amd64,
// linux/arm64) over an empty base: the static binary as entrypoint, the CA roots, a non-root
// user and org.opencontainers.image.* labels, every timestamp fixed to SOURCE_DATE_EPOCH or the
// commit time, so the same sources and Go toolchain give the same digests. The platforms of one
// binary form an image index, written to <out>/<name>.tar (OCI layout plus docker's
// manifest.json: see writeArchive) and pushed as one multi-platform tag.
//
// It is a module of its own so that go-containerregistry stays out of the SDK's go.mod.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  images build [-root DIR] [-out DIR] [-version V] [-prefix P] [-load-platform linux/ARCH]
  images push -registry R [-tag T] [-in DIR]`

// run is the command line; getenv reads SOURCE_DATE_EPOCH.
func run(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("no command\n%s", usage)
	}
	switch args[0] {
	case "build":
		fs := flag.NewFlagSet("build", flag.ContinueOnError)
		root := fs.String("root", "../..", "repository root (the directory of ekslink's go.mod)")
		out := fs.String("out", "../../_output/images", "directory for the <name>.tar archives")
		version := fs.String("version", "", "version stamped into the binaries, labels and tags (default: git describe from the nearest v* tag, else the commit's Go pseudo-version; -dirty with local changes)")
		prefix := fs.String("prefix", defaultPrefix, "repository prefix of the images' names in the archives (<prefix>/<name>:<version>)")
		load := fs.String("load-platform", "linux/"+runtime.GOARCH, "the platform docker load gets from each archive (ctr image import reads every platform)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return fmt.Errorf("build: unexpected arguments %v", fs.Args())
		}
		lp, err := parsePlatform(*load)
		if err != nil {
			return fmt.Errorf("-load-platform: %w", err)
		}
		absRoot, err := filepath.Abs(*root)
		if err != nil {
			return err
		}
		src, err := inspectSource(ctx, absRoot, *version, getenv("SOURCE_DATE_EPOCH"))
		if err != nil {
			return err
		}
		images, err := buildAll(ctx, src, buildOptions{Out: *out, Prefix: *prefix, LoadPlatform: lp})
		if err != nil {
			return err
		}
		for _, b := range images {
			fmt.Fprintf(stdout, "%s %s@%s\n", b.Archive, b.Ref, b.Digest)
		}
		return nil
	case "push":
		fs := flag.NewFlagSet("push", flag.ContinueOnError)
		in := fs.String("in", "../../_output/images", "directory holding the archives of images build")
		registry := fs.String("registry", "", "repository prefix to push to: <registry>/<name>:<tag>")
		tag := fs.String("tag", "", "tag to push (default: the version the archives were built with)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return fmt.Errorf("push: unexpected arguments %v", fs.Args())
		}
		images, err := pushAll(ctx, pushOptions{In: *in, Registry: *registry, Tag: *tag})
		for _, p := range images {
			fmt.Fprintf(stdout, "%s@%s\n", p.Ref, p.Digest)
		}
		return err
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}
