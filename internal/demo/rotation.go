package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ekslink/ekslink/internal/ssmagent"
	"github.com/ekslink/ekslink/registration"
)

// KeyRotation rotates the vault's key the way the SSM agent does (internal/ssmagent, reproducing
// amazon-ssm-agent's instance_info.go UpdatePrivateKey and fileutil.HardenedWriteFile): the record
// is rewritten in place (truncate, then write, so a reader can see half a file) with only
// privateKey, privateKeyType and privateKeyCreatedDate changed, so publicKey keeps the OLD key's
// public key. It shows the proxy's key sync refusing the half-written file and reporting unready,
// then saving the new key (public key derived from it) to the state Secret while keeping the old
// one.
func (d *Demo) KeyRotation(ctx context.Context) error {
	d.t.heading("The SSM agent rotates its key: the proxy's key sync carries it to the state Secret")
	vaultKey, err := registration.ReadRegistrationKey(d.vaultDir)
	if err != nil {
		return err
	}
	old := vaultKey.PrivateKey
	key, err := registration.GenerateKey(time.Now())
	if err != nil {
		return err
	}
	agent := &ssmagent.Vault{Dir: d.vaultDir, Midway: func(p string) error {
		if filepath.Base(p) != filepath.Base(registration.RegistrationKeyFile) {
			return nil
		}
		d.t.call("the agent truncates Vault/Store/RegistrationKey and has written half of the new record (its in-place rewrite, as a reader can see it)")
		err := waitFor(ctx, d.proxy, 5*time.Second, "the proxy to report the unsynced key", func() error {
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
		if err != nil {
			return err
		}
		st, err := d.State(ctx)
		if err != nil {
			return err
		}
		if st.Key.PrivateKey != old {
			return fmt.Errorf("the state Secret changed while the vault held half a key")
		}
		d.t.got("/readyz 503 while the vault holds a key the Secret lacks; the Secret still has the old key")
		d.t.call("the agent writes the rest of the record")
		return nil
	}}
	record, err := agent.UpdatePrivateKey(key.PrivateKey, ssmagent.KeyType, time.Now())
	if err != nil {
		return err
	}
	var written ssmagent.InstanceInfo
	if err := json.Unmarshal(record, &written); err != nil {
		return err
	}
	if written.PublicKey != vaultKey.PublicKey || written.PublicKey == key.PublicKey {
		return fmt.Errorf("the agent's record does not keep the old publicKey")
	}
	d.t.got("the agent's record: new privateKey, privateKeyCreatedDate %q, publicKey still the old key's", written.PrivateKeyCreatedDate)
	var st *registration.State
	err = waitFor(ctx, d.proxy, 20*time.Second, "the new key in the state Secret", func() error {
		st, err = d.State(ctx)
		if err != nil {
			return err
		}
		if st.Key.PrivateKey != key.PrivateKey {
			return fmt.Errorf("not synced yet")
		}
		return httpOK(http.DefaultClient, "http://"+d.proxyHealth+"/readyz")()
	})
	if err != nil {
		return err
	}
	if st.Key.PublicKey != key.PublicKey || st.Key.CreatedDate != written.PrivateKeyCreatedDate {
		return fmt.Errorf("the state Secret's key does not carry the derived public key and the agent's date")
	}
	if len(st.PreviousKeys) == 0 || st.PreviousKeys[0].PrivateKey != old {
		return fmt.Errorf("the previous key was not kept in the state")
	}
	d.t.got("Secret %s/%s-0 holds the new key (public key derived from it, the agent's date), the old one under previousKeys; /readyz 200", connectorNS, statePrefix)
	d.t.ok("a rotated key reaches durable state; a half-written one never does")
	return nil
}
