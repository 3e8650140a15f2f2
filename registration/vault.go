package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ekslink/ekslink/internal/atomicfile"
)

// DefaultVaultDir is where the SSM agent (container mode) reads its vault.
const DefaultVaultDir = "/var/lib/amazon/ssm/Vault"

// Vault file names, relative to the vault directory.
const (
	ManifestFile            = "Manifest"
	RegistrationKeyFile     = "Store/RegistrationKey"
	InstanceFingerprintFile = "Store/InstanceFingerprint"
)

// ErrInvalidVault is matched by errors about vault contents that the agent could not use.
var ErrInvalidVault = errors.New("registration: invalid vault")

// RegistrationKey is Vault/Store/RegistrationKey, field for field as the agent reads it.
type RegistrationKey struct {
	InstanceID            string `json:"instanceID"`
	Region                string `json:"region"`
	InstanceType          string `json:"instanceType"`
	AvailabilityZone      string `json:"availabilityZone"`
	PrivateKey            string `json:"privateKey"`
	PublicKey             string `json:"publicKey"`
	PrivateKeyType        string `json:"privateKeyType"`
	PrivateKeyCreatedDate string `json:"privateKeyCreatedDate"`
}

// Key returns the key material as recorded, publicKey included: after a rotation the agent's
// publicKey is stale or empty (see Validate); Key().WithPublicKey() gives the true one.
func (r RegistrationKey) Key() Key {
	return Key{PrivateKey: r.PrivateKey, PublicKey: r.PublicKey, Type: r.PrivateKeyType, CreatedDate: r.PrivateKeyCreatedDate}
}

// Validate checks that the agent can use r: an instance id, a region and a valid private key (type
// Rsa, date in AgentDateLayout). The recorded publicKey is not checked: the private key is the
// truth. When the agent rotates its key (amazon-ssm-agent instance_info.go UpdatePrivateKey) it
// replaces only privateKey, privateKeyType and privateKeyCreatedDate, so publicKey keeps the old
// key's public key, or "" when the agent registered itself; nothing in the agent reads it back.
func (r RegistrationKey) Validate() error {
	if !ValidInstanceID(r.InstanceID) {
		return fmt.Errorf("%w: RegistrationKey instance id %q is not a managed instance id (mi-... or eks_c:...)", ErrInvalidVault, r.InstanceID)
	}
	if r.Region == "" {
		return fmt.Errorf("%w: RegistrationKey has no region", ErrInvalidVault)
	}
	key := r.Key()
	key.PublicKey = ""
	if err := key.Validate(); err != nil {
		return fmt.Errorf("%w: RegistrationKey: %w", ErrInvalidVault, err)
	}
	return nil
}

// InstanceFingerprint is Vault/Store/InstanceFingerprint.
type InstanceFingerprint struct {
	Fingerprint  string            `json:"fingerprint"`
	HardwareHash map[string]string `json:"hardwareHash"`
	// SimilarityThreshold must be -1: otherwise the agent regenerates the fingerprint inside a
	// container and SSM rejects the instance.
	SimilarityThreshold int `json:"similarityThreshold"`
}

// Vault is the content of an SSM agent vault.
type Vault struct {
	// Manifest maps vault keys to file paths as the agent sees them.
	Manifest            map[string]string
	RegistrationKey     RegistrationKey
	InstanceFingerprint InstanceFingerprint
}

// VaultFromState builds the vault for a registered state. Its publicKey is derived from the private
// key, as in the record ekslink first writes: after a restore the agent finds its rotated private
// key, the date it wrote, and a publicKey that belongs to the key (the agent never reads publicKey;
// its own rotation only leaves it stale).
func VaultFromState(st *State, agentVaultDir string) (*Vault, error) {
	if !st.Registered() {
		return nil, fmt.Errorf("%w: state is %s, not registered (no instance id): run Ensure first", ErrInvalidVault, st.Status)
	}
	if agentVaultDir == "" {
		agentVaultDir = DefaultVaultDir
	}
	if !path.IsAbs(agentVaultDir) {
		return nil, fmt.Errorf("%w: agent vault directory %q is not absolute", ErrInvalidVault, agentVaultDir)
	}
	if err := st.Key.Validate(); err != nil {
		return nil, fmt.Errorf("%w: state key: %w", ErrInvalidVault, err)
	}
	key, err := st.Key.WithPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidVault, err)
	}
	v := &Vault{
		Manifest: map[string]string{
			"InstanceFingerprint": path.Join(agentVaultDir, InstanceFingerprintFile),
			"RegistrationKey":     path.Join(agentVaultDir, RegistrationKeyFile),
		},
		RegistrationKey: RegistrationKey{
			InstanceID: st.InstanceID, Region: st.Region, InstanceType: st.InstanceType, AvailabilityZone: st.AvailabilityZone,
			PrivateKey: key.PrivateKey, PublicKey: key.PublicKey, PrivateKeyType: key.Type, PrivateKeyCreatedDate: key.CreatedDate,
		},
		InstanceFingerprint: InstanceFingerprint{Fingerprint: st.Fingerprint, HardwareHash: map[string]string{}, SimilarityThreshold: -1},
	}
	return v, v.Validate()
}

// Validate checks the vault before it is written.
func (v *Vault) Validate() error {
	if err := v.RegistrationKey.Validate(); err != nil {
		return err
	}
	if v.InstanceFingerprint.Fingerprint == "" {
		return fmt.Errorf("%w: empty fingerprint", ErrInvalidVault)
	}
	if v.InstanceFingerprint.SimilarityThreshold != -1 {
		return fmt.Errorf("%w: similarityThreshold %d, must be -1 in a container", ErrInvalidVault, v.InstanceFingerprint.SimilarityThreshold)
	}
	for _, k := range []string{"InstanceFingerprint", "RegistrationKey"} {
		if !path.IsAbs(v.Manifest[k]) {
			return fmt.Errorf("%w: manifest path of %s %q is not absolute", ErrInvalidVault, k, v.Manifest[k])
		}
	}
	return nil
}

// Files returns the vault's files (relative path -> content) exactly as written.
func (v *Vault) Files() (map[string][]byte, error) {
	m, err := json.Marshal(v.Manifest)
	if err != nil {
		return nil, err
	}
	rk, err := json.Marshal(v.RegistrationKey)
	if err != nil {
		return nil, err
	}
	hh := v.InstanceFingerprint
	if hh.HardwareHash == nil {
		hh.HardwareHash = map[string]string{}
	}
	fp, err := json.Marshal(hh)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{ManifestFile: m, RegistrationKeyFile: rk, InstanceFingerprintFile: fp}, nil
}

// VaultOptions configure WriteVault.
type VaultOptions struct {
	// AgentVaultDir is the vault directory as the agent sees it, used for the paths in Manifest
	// (default DefaultVaultDir), so the vault can be written under another mount point.
	AgentVaultDir string
}

// WriteVault validates the state's vault and writes it under dir: each file atomically with mode
// 0600 (directories 0700), the Manifest last, because an agent that finds no Manifest treats the
// instance as unregistered rather than reading half a vault.
func WriteVault(ctx context.Context, dir string, st *State, opts VaultOptions) error {
	v, err := VaultFromState(st, opts.AgentVaultDir)
	if err != nil {
		return err
	}
	files, err := v.Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "Store"), 0o700); err != nil {
		return fmt.Errorf("registration: creating vault directory: %w", err)
	}
	for _, name := range []string{InstanceFingerprintFile, RegistrationKeyFile, ManifestFile} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, filepath.FromSlash(name)), files[name], 0o600); err != nil {
			return fmt.Errorf("registration: writing vault: %w", err)
		}
	}
	return nil
}

// ReadRegistrationKey reads and strictly parses Vault/Store/RegistrationKey (a partially written
// file is an error matching ErrInvalidVault).
func ReadRegistrationKey(dir string) (RegistrationKey, error) {
	var rk RegistrationKey
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(RegistrationKeyFile)))
	if err != nil {
		return rk, err
	}
	if err := strictUnmarshal(b, &rk); err != nil {
		return rk, fmt.Errorf("%w: RegistrationKey (%d bytes) does not parse: %v", ErrInvalidVault, len(b), err)
	}
	return rk, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// ReadVault reads a vault written by WriteVault or by the agent.
func ReadVault(dir string) (*Vault, error) {
	v := &Vault{}
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	if err := strictUnmarshal(b, &v.Manifest); err != nil {
		return nil, fmt.Errorf("%w: Manifest: %v", ErrInvalidVault, err)
	}
	if v.RegistrationKey, err = ReadRegistrationKey(dir); err != nil {
		return nil, err
	}
	b, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(InstanceFingerprintFile)))
	if err != nil {
		return nil, err
	}
	if err := strictUnmarshal(b, &v.InstanceFingerprint); err != nil {
		return nil, fmt.Errorf("%w: InstanceFingerprint: %v", ErrInvalidVault, err)
	}
	return v, nil
}

// State converts the vault into a registered State for the given activation id.
func (v *Vault) State(activationID string) (*State, error) {
	if err := v.RegistrationKey.Validate(); err != nil {
		return nil, err
	}
	key, err := v.RegistrationKey.Key().WithPublicKey()
	if err != nil {
		return nil, err
	}
	return &State{
		ActivationID: activationID, Region: v.RegistrationKey.Region, Status: StatusRegistered,
		InstanceID: v.RegistrationKey.InstanceID, Fingerprint: v.InstanceFingerprint.Fingerprint, Key: key,
		InstanceType: v.RegistrationKey.InstanceType, AvailabilityZone: v.RegistrationKey.AvailabilityZone,
	}, nil
}
