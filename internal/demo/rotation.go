package demo

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ekslink/ekslink/registration"
)

// KeyRotation rewrites the vault's RegistrationKey in place the way the SSM agent does when it
// rotates its key (truncate, then write, so a reader can see half a file), and shows the proxy's
// key sync refusing the partial file, reporting unready, then saving the new key to the state
// Secret while keeping the old one.
func (d *Demo) KeyRotation(ctx context.Context) error {
	d.t.heading("The SSM agent rotates its key: the proxy's key sync carries it to the state Secret")
	v, err := registration.ReadVault(d.vaultDir)
	if err != nil {
		return err
	}
	old := v.RegistrationKey.PublicKey
	key, err := registration.GenerateKey(time.Now())
	if err != nil {
		return err
	}
	v.RegistrationKey.PrivateKey, v.RegistrationKey.PublicKey, v.RegistrationKey.PrivateKeyCreatedDate = key.PrivateKey, key.PublicKey, key.CreatedDate
	files, err := v.Files()
	if err != nil {
		return err
	}
	content := files[registration.RegistrationKeyFile]
	path := filepath.Join(d.vaultDir, registration.RegistrationKeyFile)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(content[:len(content)/2]); err != nil {
		f.Close()
		return err
	}
	d.t.call("truncate Vault/Store/RegistrationKey and write half of a new key (as the agent's in-place rewrite can be seen)")
	unready := waitFor(ctx, d.proxy, 5*time.Second, "the proxy to report the unsynced key", func() error {
		resp, err := http.Get("http://" + d.proxyHealth + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return fmt.Errorf("still ready")
		}
		return nil
	})
	if unready != nil {
		f.Close()
		return unready
	}
	st, err := d.State(ctx)
	if err != nil {
		f.Close()
		return err
	}
	if st.Key.PublicKey != old {
		f.Close()
		return fmt.Errorf("the state Secret changed while the vault held half a key")
	}
	d.t.got("/readyz 503 while the vault holds a key the Secret lacks; the Secret still has the old key")
	if _, err := f.Write(content[len(content)/2:]); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d.t.call("write the rest of the new key")
	err = waitFor(ctx, d.proxy, 20*time.Second, "the new key in the state Secret", func() error {
		st, err = d.State(ctx)
		if err != nil {
			return err
		}
		if st.Key.PublicKey != key.PublicKey {
			return fmt.Errorf("not synced yet")
		}
		return httpOK(http.DefaultClient, "http://"+d.proxyHealth+"/readyz")()
	})
	if err != nil {
		return err
	}
	if len(st.PreviousKeys) == 0 || st.PreviousKeys[0].PublicKey != old {
		return fmt.Errorf("the previous key was not kept in the state")
	}
	d.t.got("Secret %s/%s-0 holds the new key, the old one under previousKeys; /readyz 200", connectorNS, statePrefix)
	d.t.ok("a rotated key reaches durable state; a half-written one never does")
	return nil
}
