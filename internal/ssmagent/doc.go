// Package ssmagent reproduces, for tests and the demo, how the unmodified AWS SSM agent
// (github.com/aws/amazon-ssm-agent, read at commit 1c217c89b42de51d4f4063363d8ec1f2eef56055) reads
// and writes the registration in its vault on Linux, so that ekslink is tested against what the
// agent really writes rather than against ekslink's own idea of the file:
//
//   - agent/managedInstances/registration/instance_info.go: the instanceInfo struct (field order and
//     JSON tags, no omitempty), UpdatePrivateKey (rotation replaces only privateKey, privateKeyType
//     and privateKeyCreatedDate; publicKey keeps whatever it held, the OLD key's public key or ""),
//     UpdateServerInfo (registration by the agent itself writes publicKey "": "Value will be present
//     only for EC2"), the date written with time.Now().Format(defaultDateStringFormat): Format, not
//     String, so there is never a monotonic-clock "m=+..." suffix, and the zone is the agent's local
//     zone. Nothing in the agent reads publicKey back (registration.PublicKey has no caller).
//   - agent/agent_parser.go and core/agent_parser.go, registerManagedInstance: the agent's own
//     on-prem registration calls UpdateServerInfo(id, region, "", privateKey, "Rsa", ...).
//   - agent/managedInstances/vault/fsvault/fsvault.go, Store: the record goes to Vault/Store/<key>,
//     then the whole Manifest is rewritten with the agent's absolute path for the key.
//   - agent/fileutil/harden.go, HardenedWriteFile: create the file if missing, harden it (0600,
//     root:root; agent/fileutil/harden_unix.go), then ioutil.WriteFile: open with O_TRUNC and write
//     in place. Not atomic: a reader can see an empty file or a prefix of the new record.
//   - agent/managedInstances/auth/rsa_key.go: keys are RSA-2048, privateKey is base64 PKCS#1 DER,
//     a public key is base64 PKIX DER, the type is "Rsa".
//
// It deliberately does not model the agent's in-memory cache of the record (it re-reads the file,
// which is what the agent holds as long as nobody else rewrote it), the chown to root when not
// running as root, or the hardening of directories (RecursivelyHarden sets them to 0600, which only
// root can traverse).
package ssmagent
