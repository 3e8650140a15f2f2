package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/ekslink/ekslink/envtest"
)

// cert-manager renews the Secret and the kubelet swaps the mounted files: the next handshake
// serves the new pair, and a half-written pair keeps the old one.
func TestCertFilesReloadWhenTheFilesChange(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(c envtest.ServingCert, mtime time.Time) {
		for f, data := range map[string][]byte{certFile: c.CertPEM, keyFile: c.KeyPEM} {
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	first, second := envtest.NewServingCert(t), envtest.NewServingCert(t)
	write(first, time.Now().Add(-time.Hour))
	c, err := newCertFiles(certFile, keyFile, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	serving := func() []byte {
		c.checkedAt = time.Time{} // skip the once-a-second throttle
		got, err := c.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		return got.Certificate[0]
	}
	firstDER := serving()

	write(second, time.Now())
	secondDER := serving()
	if bytes.Equal(firstDER, secondDER) {
		t.Fatal("the renewed certificate was not picked up")
	}

	if err := os.WriteFile(keyFile, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(serving(), secondDER) {
		t.Error("a broken key file replaced the serving certificate")
	}
	if _, err := newCertFiles(certFile, keyFile, logr.Discard()); err == nil {
		t.Error("a broken pair loaded at start")
	}
}
