package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestEveryBinaryHasAnArchive: one <name>.tar per binary, named <prefix>/<name>:<version>.
func TestEveryBinaryHasAnArchive(t *testing.T) {
	_, images := buildShared(t)
	if len(images) != len(binaries) {
		t.Fatalf("built %d images for %d binaries", len(images), len(binaries))
	}
	for i, b := range binaries {
		if got, want := images[i].Archive, filepath.Join(shared.dir, b.Name+".tar"); got != want {
			t.Errorf("archive %s, want %s", got, want)
		}
		if got, want := images[i].Ref.String(), "localhost/ekslink/"+b.Name+":"+testVersion; got != want {
			t.Errorf("name %s, want %s", got, want)
		}
	}
}

// TestArchiveIsAnOCILayoutWithEveryPlatform reads each archive through go-containerregistry's
// layout package, as ctr image import reads it (OCI layout preferred: containerd
// images/archive/importer.go), and checks what the CRI and containerd need: the platform in the
// index and in the config (ctr filters out images without one), an entrypoint, and what the
// issue asks for: the non-root user, the labels and fixed times.
func TestArchiveIsAnOCILayoutWithEveryPlatform(t *testing.T) {
	src, images := buildShared(t)
	for _, b := range images {
		t.Run(b.Binary.Name, func(t *testing.T) {
			a, err := readArchive(b.Archive, workDir)
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(a.Dir)
			if a.Ref != b.Ref.Name() {
				t.Errorf("index.json names %q, want %q (io.containerd.image.name)", a.Ref, b.Ref.Name())
			}
			if d, _ := a.Index.Digest(); d != b.Digest {
				t.Errorf("archive index digest %s, build reported %s", d, b.Digest)
			}
			if mt, _ := a.Index.MediaType(); mt != types.OCIImageIndex {
				t.Errorf("index media type %s", mt)
			}
			im, err := a.Index.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) != len(platforms) {
				t.Fatalf("index has %d manifests, want %d", len(im.Manifests), len(platforms))
			}
			for i, p := range platforms {
				desc := im.Manifests[i]
				if desc.Platform == nil || desc.Platform.OS != p.OS || desc.Platform.Architecture != p.Architecture || desc.Platform.Variant != p.Variant {
					t.Errorf("index entry %d platform %+v, want %s", i, desc.Platform, p)
				}
				img, err := a.Index.Image(desc.Digest)
				if err != nil {
					t.Fatal(err)
				}
				m, err := img.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
					t.Errorf("%s media types %s / %s, want OCI", p, m.MediaType, m.Config.MediaType)
				}
				checkConfig(t, parseShared(t)[b.Binary.Name][i], src, b.Binary, p)
			}
		})
	}
}

func checkConfig(t *testing.T, pi parsedImage, src source, b binary, p platform) {
	t.Helper()
	cf := pi.config
	if cf.OS != p.OS || cf.Architecture != p.Architecture || cf.Variant != p.Variant {
		t.Errorf("%s config platform %s/%s/%s", p, cf.OS, cf.Architecture, cf.Variant)
	}
	if want := []string{"/usr/local/bin/" + b.Name}; !slices.Equal(cf.Config.Entrypoint, want) || len(cf.Config.Cmd) != 0 {
		t.Errorf("%s entrypoint %q cmd %q, want %q", p, cf.Config.Entrypoint, cf.Config.Cmd, want)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("%s user %q, want 65532:65532", p, cf.Config.User)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source":   "https://github.com/ekslink/ekslink",
		"org.opencontainers.image.revision": src.Revision,
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.created":  src.Created.Format(time.RFC3339),
		"org.opencontainers.image.title":    b.Name,
	}
	for k, v := range wantLabels {
		if cf.Config.Labels[k] != v {
			t.Errorf("%s label %s=%q, want %q", p, k, cf.Config.Labels[k], v)
		}
	}
	if len(src.Revision) != 40 {
		t.Errorf("revision %q is not a full commit hash", src.Revision)
	}
	if !cf.Created.Equal(src.Created) {
		t.Errorf("%s created %s, want the commit time %s", p, cf.Created, src.Created)
	}
	for _, h := range cf.History {
		if !h.Created.Equal(src.Created) {
			t.Errorf("%s history %q created %s", p, h.CreatedBy, h.Created)
		}
	}
	files := pi.files
	for path, hdr := range files {
		if !hdr.ModTime.Equal(src.Created) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s %s: mtime %s uid %d gid %d", p, path, hdr.ModTime, hdr.Uid, hdr.Gid)
		}
	}
	if hdr, ok := files["usr/local/bin/"+b.Name]; !ok || hdr.Mode != 0o755 {
		t.Errorf("%s: binary missing or not executable: %+v", p, hdr)
	}
	if _, ok := files["etc/ssl/certs/ca-certificates.crt"]; !ok {
		t.Errorf("%s: no CA roots", p)
	}
}

// parsedImage is what the tests check of one platform's image, read once from its archive.
type parsedImage struct {
	config *v1.ConfigFile
	// files are the headers of every layer entry.
	files map[string]*tar.Header
	// binary is the image's binary, copied to a file; ca is the roots file.
	binary string
	ca     []byte
}

// parsed holds every archive of the shared build read through the layout package, once: reading
// the layers is the slow part under the race detector.
var parsed struct {
	once   sync.Once
	images map[string][]parsedImage // binary name -> one per platform, in platforms order
	err    error
}

func parseShared(t *testing.T) map[string][]parsedImage {
	t.Helper()
	_, images := buildShared(t)
	parsed.once.Do(func() {
		parsed.images = map[string][]parsedImage{}
		for _, b := range images {
			a, err := readArchive(b.Archive, workDir)
			if err != nil {
				parsed.err = err
				return
			}
			defer os.RemoveAll(a.Dir)
			im, err := a.Index.IndexManifest()
			if err != nil {
				parsed.err = err
				return
			}
			for i, desc := range im.Manifests {
				img, err := a.Index.Image(desc.Digest)
				if err != nil {
					parsed.err = err
					return
				}
				pi := parsedImage{files: map[string]*tar.Header{}}
				if pi.config, err = img.ConfigFile(); err != nil {
					parsed.err = err
					return
				}
				pi.binary = filepath.Join(workDir, fmt.Sprintf("%s-%d", b.Binary.Name, i))
				if parsed.err = readLayers(img, b.Binary.Name, pi.binary, &pi); parsed.err != nil {
					return
				}
				parsed.images[b.Binary.Name] = append(parsed.images[b.Binary.Name], pi)
			}
		}
	})
	if parsed.err != nil {
		t.Fatal(parsed.err)
	}
	return parsed.images
}

// readLayers records every entry's header, writes the binary to binPath and keeps the roots.
func readLayers(img v1.Image, name, binPath string, pi *parsedImage) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return err
			}
			pi.files[hdr.Name] = hdr
			switch hdr.Name {
			case "usr/local/bin/" + name:
				data, err := io.ReadAll(tr)
				if err != nil {
					rc.Close()
					return err
				}
				if err := os.WriteFile(binPath, data, 0o755); err != nil {
					rc.Close()
					return err
				}
			case "etc/ssl/certs/ca-certificates.crt":
				if pi.ca, err = io.ReadAll(tr); err != nil {
					rc.Close()
					return err
				}
			}
		}
		rc.Close()
	}
	return nil
}

// TestArchiveLoadsAsDockerSave reads each archive through go-containerregistry's tarball package,
// which reads "docker save" archives (manifest.json) the way "docker load" does: it finds the
// load platform's image under the archive's name, with the same config as in the index.
func TestArchiveLoadsAsDockerSave(t *testing.T) {
	_, images := buildShared(t)
	for _, b := range images {
		t.Run(b.Binary.Name, func(t *testing.T) {
			img, err := tarball.ImageFromPath(b.Archive, &b.Ref)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != platforms[0].OS || cf.Architecture != platforms[0].Architecture {
				t.Errorf("docker load gets %s/%s, want %s", cf.OS, cf.Architecture, platforms[0])
			}
			a, err := readArchive(b.Archive, workDir)
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(a.Dir)
			im, _ := a.Index.IndexManifest()
			want, err := a.Index.Image(im.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			gotCfg, _ := img.ConfigName()
			wantCfg, _ := want.ConfigName()
			if gotCfg != wantCfg {
				t.Errorf("manifest.json config %s, index has %s", gotCfg, wantCfg)
			}
			// The same blobs as the index's image for that platform.
			gotM, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			wantM, err := want.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(gotM.Layers) != len(wantM.Layers) || len(gotM.Layers) != len(cf.RootFS.DiffIDs) {
				t.Fatalf("manifest.json has %d layers, the index's image %d", len(gotM.Layers), len(wantM.Layers))
			}
			for i := range gotM.Layers {
				if gotM.Layers[i].Digest != wantM.Layers[i].Digest {
					t.Errorf("layer %d: %s, index has %s", i, gotM.Layers[i].Digest, wantM.Layers[i].Digest)
				}
			}
			var other []dockerManifest
			raw := readTarEntry(t, b.Archive, "manifest.json")
			if err := json.Unmarshal(raw, &other); err != nil || len(other) != 1 || !slices.Equal(other[0].RepoTags, []string{b.Ref.Name()}) {
				t.Errorf("manifest.json = %s (%v), want one entry tagged %s", raw, err, b.Ref.Name())
			}
		})
	}
}

func gitDirIsADirectory(t *testing.T, root string) bool {
	t.Helper()
	fi, err := os.Stat(filepath.Join(root, ".git"))
	if err != nil {
		t.Fatal(err)
	}
	return fi.IsDir()
}

func readTarEntry(t *testing.T, path, entry string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no %s: %v", path, entry, err)
		}
		if hdr.Name == entry {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// TestBinariesAreStaticAndReportTheLabelledVersion runs each image's binary for this machine's
// platform: "version -o json" (internal/cli) must report the version and revision the labels
// carry; every binary must be static (no ELF interpreter, no shared libraries) for its platform.
func TestBinariesAreStaticAndReportTheLabelledVersion(t *testing.T) {
	src, images := buildShared(t)
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, b := range images {
		t.Run(b.Binary.Name, func(t *testing.T) {
			ran := false
			for i, p := range platforms {
				bin := parseShared(t)[b.Binary.Name][i].binary
				f, err := elf.Open(bin)
				if err != nil {
					t.Fatal(err)
				}
				if f.Machine != machines[p.Architecture] {
					t.Errorf("%s binary is for %s", p, f.Machine)
				}
				for _, prog := range f.Progs {
					if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
						t.Errorf("%s binary is dynamically linked (%s)", p, prog.Type)
					}
				}
				f.Close()
				if p.Architecture != runtime.GOARCH {
					continue
				}
				ran = true
				out, err := exec.CommandContext(context.Background(), bin, "version", "-o", "json").Output()
				if err != nil {
					t.Fatalf("%s version: %v", bin, err)
				}
				var info struct{ Version, Revision, Platform string }
				if err := json.Unmarshal(out, &info); err != nil {
					t.Fatalf("version -o json = %s: %v", out, err)
				}
				if info.Version != testVersion || info.Platform != "linux/"+p.Architecture {
					t.Errorf("binary reports %+v, want version %s (the label's) on linux/%s", info, testVersion, p.Architecture)
				}
				// The go command stamps the revision only when .git is a directory
				// (cmd/go/internal/vcs/vcs.go: RootNames {".git", isDir: true}): a clone, not a
				// git worktree or submodule, whose .git is a file. The label has it either way.
				if gitDirIsADirectory(t, src.Root) && info.Revision != src.Revision {
					t.Errorf("binary reports revision %q, the label says %s", info.Revision, src.Revision)
				}
			}
			if !ran {
				t.Fatalf("no image for this machine's architecture %s to run", runtime.GOARCH)
			}
		})
	}
}

// TestCARootsVerifyAWS: the roots file is where Go's crypto/x509 looks first on Linux
// (src/crypto/x509/root_linux.go certFiles), parses, and holds the roots AWS endpoints chain to.
func TestCARootsVerifyAWS(t *testing.T) {
	data := parseShared(t)[binaries[0].Name][0].ca
	var subjects []string
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) != 0 {
				t.Fatalf("trailing non-PEM data in the roots file")
			}
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !c.IsCA {
			t.Errorf("%s is not a CA", c.Subject)
		}
		subjects = append(subjects, c.Subject.CommonName)
	}
	_, n, err := caBundle()
	if err != nil {
		t.Fatal(err)
	}
	if len(subjects) != n || n < 100 {
		t.Errorf("%d roots in the file, bundle gives %d", len(subjects), n)
	}
	// AWS service endpoints chain to Amazon Trust Services (and its Starfield cross-sign).
	for _, want := range []string{"Amazon Root CA 1", "Amazon Root CA 3", "Starfield Services Root Certificate Authority - G2"} {
		if !slices.Contains(subjects, want) {
			t.Errorf("roots lack %q", want)
		}
	}
}

// TestSameSourcesSameDigest builds everything a second time: the same sources give the same
// index digests and byte-identical archives.
func TestSameSourcesSameDigest(t *testing.T) {
	src, first := buildShared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	second, err := runBuild(ctx, src.Root, filepath.Join(workDir, "second"))
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != len(first) {
		t.Fatalf("second build made %d images, first %d", len(second), len(first))
	}
	for i := range first {
		if first[i].Digest != second[i].Digest {
			t.Errorf("%s: digest %s then %s", first[i].Binary.Name, first[i].Digest, second[i].Digest)
		}
		if a, b := fileSum(t, first[i].Archive), fileSum(t, second[i].Archive); a != b {
			t.Errorf("%s: archives differ", first[i].Binary.Name)
		}
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// A name that cannot be an image reference fails before anything is built.
func TestBadPrefixFails(t *testing.T) {
	src := source{Root: repoRoot(t), Version: "v1", Created: time.Unix(0, 0)}
	_, err := buildAll(context.Background(), src, buildOptions{Out: t.TempDir(), Prefix: "Bad Prefix"})
	var nameErr *name.ErrBadName
	if !errors.As(err, &nameErr) {
		t.Fatalf("err = %v, want a bad-name error", err)
	}
}
