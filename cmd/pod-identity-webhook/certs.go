package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// certFiles serves the certificate in --tls-cert/--tls-key and reloads it when either file
// changes (cert-manager renewals, Secret volume updates), checking at most once a second. A pair
// that does not load keeps the previous one.
type certFiles struct {
	certFile, keyFile string
	log               logr.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     string
	checkedAt time.Time
}

func newCertFiles(certFile, keyFile string, log logr.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// fileStamp identifies the files' current contents by size and modification time.
func (c *certFiles) fileStamp() (string, error) {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

func (c *certFiles) load() error {
	stamp, err := c.fileStamp()
	if err == nil {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(c.certFile, c.keyFile); err == nil {
			c.cert, c.stamp = &cert, stamp
			return nil
		}
	}
	return fmt.Errorf("serving certificate --tls-cert %s --tls-key %s: %w", c.certFile, c.keyFile, err)
}

func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checkedAt) >= time.Second {
		c.checkedAt = now
		if stamp, err := c.fileStamp(); err == nil && stamp != c.stamp {
			if err := c.load(); err != nil {
				c.stamp = stamp // log once per change, not once a second
				c.log.Error(err, "keeping the previous serving certificate")
			} else {
				c.log.Info("serving certificate reloaded", "file", c.certFile)
			}
		}
	}
	return c.cert, nil
}
