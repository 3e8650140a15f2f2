package ssmagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Constants as the agent defines them.
const (
	// DateLayout is defaultDateStringFormat (instance_info.go).
	DateLayout = "2006-01-02 15:04:05.999999999 -0700 MST"
	// KeyType is auth.KeyType (rsa_key.go).
	KeyType = "Rsa"
	// RegVaultKey is the vault key of the on-prem registration (instance_info.go).
	RegVaultKey = "RegistrationKey"
	// DefaultVaultDir is appconfig.DefaultDataStorePath joined with "Vault" on Linux (fsvault.go).
	DefaultVaultDir = "/var/lib/amazon/ssm/Vault"
	// hardenedMode is fileutil.RWPermission (harden.go).
	hardenedMode = 0o600
)

// InstanceInfo is the agent's instanceInfo (instance_info.go): the same fields in the same order
// with the same JSON tags, so json.Marshal produces the agent's bytes. It is kept apart from
// registration.RegistrationKey on purpose: fixtures must follow the agent, not ekslink.
type InstanceInfo struct {
	InstanceID            string `json:"instanceID"`
	Region                string `json:"region"`
	InstanceType          string `json:"instanceType"`
	AvailabilityZone      string `json:"availabilityZone"`
	PrivateKey            string `json:"privateKey"`
	PublicKey             string `json:"publicKey"`
	PrivateKeyType        string `json:"privateKeyType"`
	PrivateKeyCreatedDate string `json:"privateKeyCreatedDate"`
}

// Vault is an SSM agent vault directory as fsvault reads and writes it.
type Vault struct {
	// Dir is the vault directory on this machine.
	Dir string
	// AgentDir is the same directory as the agent sees it, recorded in the Manifest (default
	// DefaultVaultDir).
	AgentDir string
	// Midway, when set, is called during every in-place rewrite once the file has been truncated
	// and the first half of the new content written: what a reader can see while the agent's
	// ioutil.WriteFile runs. An error stops the write there, leaving the half-written file (an agent
	// killed mid-write), and is returned.
	Midway func(path string) error
}

func (v *Vault) agentDir() string {
	if v.AgentDir == "" {
		return DefaultVaultDir
	}
	return v.AgentDir
}

// Load returns the registration as loadServerInfo does: the zero InstanceInfo when there is no
// Manifest (unregistered), otherwise the file the Manifest names for RegVaultKey (an agent path,
// mapped to Dir here) decoded with encoding/json.
func (v *Vault) Load() (InstanceInfo, error) {
	var info InstanceInfo
	manifest, err := v.manifest()
	if err != nil || manifest == nil {
		return info, err
	}
	p := manifest[RegVaultKey]
	if p == "" {
		return info, fmt.Errorf("ssmagent: %s does not exist", RegVaultKey)
	}
	rel, ok := strings.CutPrefix(path.Clean(p), v.agentDir()+"/")
	if !ok {
		return info, fmt.Errorf("ssmagent: Manifest names %s for %s, outside the agent's vault %s", p, RegVaultKey, v.agentDir())
	}
	b, err := os.ReadFile(filepath.Join(v.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return info, fmt.Errorf("ssmagent: data file of %s: %w", RegVaultKey, err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("ssmagent: failed to unmarshal instance info: %w", err)
	}
	return info, nil
}

func (v *Vault) manifest() (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(v.Dir, "Manifest"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("ssmagent: failed to unmarshal vault manifest: %w", err)
	}
	return m, nil
}

// UpdatePrivateKey is the agent's key rotation (instance_info.go UpdatePrivateKey, called by
// onpremprovider/role_provider.go rotatePrivateKey after SSM accepted the new public key): it loads
// the record, replaces privateKey, privateKeyType and privateKeyCreatedDate (now formatted with
// DateLayout in now's zone), leaves publicKey and everything else as they were, and stores it. It
// returns the bytes written.
func (v *Vault) UpdatePrivateKey(privateKey, privateKeyType string, now time.Time) ([]byte, error) {
	info, err := v.Load()
	if err != nil {
		return nil, err
	}
	info.PrivateKey = privateKey
	info.PrivateKeyType = privateKeyType
	info.PrivateKeyCreatedDate = now.Format(DateLayout)
	return v.store(info)
}

// UpdateServerInfo is the agent's own registration record (instance_info.go UpdateServerInfo, as
// agent_parser.go registerManagedInstance calls it on-prem with publicKey ""): instanceType and
// availabilityZone empty, the date now. It returns the bytes written.
func (v *Vault) UpdateServerInfo(instanceID, region, publicKey, privateKey, privateKeyType string, now time.Time) ([]byte, error) {
	return v.store(InstanceInfo{InstanceID: instanceID, Region: region, PrivateKey: privateKey,
		PrivateKeyType: privateKeyType, PrivateKeyCreatedDate: now.Format(DateLayout), PublicKey: publicKey})
}

func (v *Vault) store(info InstanceInfo) ([]byte, error) {
	data, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	return data, v.Store(RegVaultKey, data)
}

// Store is fsvault.Store: it writes data to Store/<key> and then rewrites the whole Manifest with the
// agent's path for key, both with HardenedWriteFile (in place, not atomic).
func (v *Vault) Store(key string, data []byte) error {
	if err := os.MkdirAll(filepath.Join(v.Dir, "Store"), 0o700); err != nil {
		return err
	}
	manifest, err := v.manifest()
	if err != nil {
		return err
	}
	if manifest == nil {
		manifest = map[string]string{}
	}
	if err := v.hardenedWriteFile(filepath.Join(v.Dir, "Store", key), data); err != nil {
		return fmt.Errorf("ssmagent: failed to write data file for %s: %w", key, err)
	}
	manifest[key] = path.Join(v.agentDir(), "Store", key)
	m, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := v.hardenedWriteFile(filepath.Join(v.Dir, "Manifest"), m); err != nil {
		return fmt.Errorf("ssmagent: failed to save manifest when storing %s: %w", key, err)
	}
	return nil
}

// hardenedWriteFile is fileutil.HardenedWriteFile: create the file when missing, chmod it to 0600
// when it is not (and chown it to root when running as root), then write it in place the way
// ioutil.WriteFile does (O_WRONLY|O_CREATE|O_TRUNC, one write).
func (v *Vault) hardenedWriteFile(name string, data []byte) error {
	if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
		f, err := os.Create(name)
		if err != nil {
			return fmt.Errorf("ssmagent: failed to create the file: %w", err)
		}
		_ = f.Close()
	} else if err != nil {
		return err
	}
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != hardenedMode {
		if err := os.Chmod(name, hardenedMode); err != nil {
			return err
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(name, 0, 0); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, hardenedMode)
	if err != nil {
		return err
	}
	first := data
	if v.Midway != nil {
		first = data[:len(data)/2]
	}
	if _, err := f.Write(first); err != nil {
		_ = f.Close()
		return err
	}
	if v.Midway != nil {
		if err := v.Midway(name); err != nil {
			_ = f.Close()
			return err
		}
		if _, err := f.Write(data[len(first):]); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}
