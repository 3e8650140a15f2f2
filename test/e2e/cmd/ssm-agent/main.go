// Command ssm-agent stands in for the unmodified AWS SSM agent in the connector pod of the
// end-to-end tests (the real agent image cannot be pulled here; this image is never shipped).
//
// Without arguments it does what the agent does first in container mode: it reads its
// configuration (/etc/amazon/ssm/amazon-ssm-agent.json) and waits for the registration in its
// vault, which it reads the way the agent does (internal/ssmagent, after the agent's fsvault and
// instance_info.go), checks the record and the instance fingerprint, prints
// "ssm-agent: registered instance <id> fingerprint <uuid>" and idles until SIGTERM.
//
// "ssm-agent request [-arn ARN] PATH" is what the agent does for a console request: a GET of PATH
// to the connector's proxy on its unix socket with the x-aws-eks-identity-arn header (none when
// -arn is empty); it prints "status <code>" and the body.
package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ekslink/ekslink/internal/ssmagent"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "request" {
		err = request(os.Args[2:])
	} else {
		err = agent(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssm-agent:", err)
		os.Exit(1)
	}
}

func agent(args []string) error {
	fs := flag.NewFlagSet("ssm-agent", flag.ContinueOnError)
	vaultDir := fs.String("vault", ssmagent.DefaultVaultDir, "the agent's vault")
	configPath := fs.String("config", "/etc/amazon/ssm/amazon-ssm-agent.json", "the agent's configuration")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for the registration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg struct {
		Agent    struct{ ContainerMode bool }
		Identity struct{ ConsumptionOrder []string }
		Profile  struct{ KeyAutoRotateDays int }
	}
	data, err := os.ReadFile(*configPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", *configPath, err)
	}
	if !cfg.Agent.ContainerMode || len(cfg.Identity.ConsumptionOrder) != 1 || cfg.Identity.ConsumptionOrder[0] != "OnPrem" {
		return fmt.Errorf("%s is not the connector's container-mode, on-prem configuration: %s", *configPath, data)
	}
	vault := &ssmagent.Vault{Dir: *vaultDir}
	deadline := time.Now().Add(*wait)
	var info ssmagent.InstanceInfo
	for {
		if info, err = vault.Load(); err == nil && info.InstanceID != "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no registration in %s after %s (last error: %v)", *vaultDir, *wait, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := checkRecord(info); err != nil {
		return err
	}
	fp, err := fingerprint(*vaultDir)
	if err != nil {
		return err
	}
	fmt.Printf("ssm-agent: registered instance %s fingerprint %s region %s key rotation every %d days\n",
		info.InstanceID, fp, info.Region, cfg.Profile.KeyAutoRotateDays)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	return nil
}

// checkRecord checks what the agent needs of its registration record: an RSA key it can sign with
// (base64 PKCS#1 DER, type Rsa) and a creation date in its layout (else rotation is off).
func checkRecord(info ssmagent.InstanceInfo) error {
	der, err := base64.StdEncoding.DecodeString(info.PrivateKey)
	if err != nil {
		return fmt.Errorf("privateKey is not base64: %w", err)
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err != nil {
		return fmt.Errorf("privateKey is not PKCS#1 DER: %w", err)
	}
	if info.PrivateKeyType != ssmagent.KeyType {
		return fmt.Errorf("privateKeyType %q, want %q", info.PrivateKeyType, ssmagent.KeyType)
	}
	if _, err := time.Parse(ssmagent.DateLayout, info.PrivateKeyCreatedDate); err != nil {
		return fmt.Errorf("privateKeyCreatedDate %q is not in the agent's layout: %w", info.PrivateKeyCreatedDate, err)
	}
	return nil
}

// fingerprint reads Store/InstanceFingerprint, which the Manifest names: the agent keeps the
// fingerprint only with similarityThreshold -1 (in a container it would otherwise regenerate it,
// and SSM would reject the instance).
func fingerprint(vaultDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(vaultDir, "Manifest"))
	if err != nil {
		return "", err
	}
	var manifest map[string]string
	if err := json.Unmarshal(data, &manifest); err != nil {
		return "", fmt.Errorf("vault Manifest: %w", err)
	}
	want := filepath.Join(ssmagent.DefaultVaultDir, "Store", "InstanceFingerprint")
	if manifest["InstanceFingerprint"] != want {
		return "", fmt.Errorf("the vault Manifest names %q for InstanceFingerprint, want %q", manifest["InstanceFingerprint"], want)
	}
	data, err = os.ReadFile(filepath.Join(vaultDir, "Store", "InstanceFingerprint"))
	if err != nil {
		return "", err
	}
	var fp struct {
		Fingerprint         string          `json:"fingerprint"`
		HardwareHash        map[string]any  `json:"hardwareHash"`
		SimilarityThreshold json.RawMessage `json:"similarityThreshold"`
	}
	if err := json.Unmarshal(data, &fp); err != nil {
		return "", fmt.Errorf("InstanceFingerprint: %w", err)
	}
	if string(fp.SimilarityThreshold) != "-1" {
		return "", fmt.Errorf("InstanceFingerprint similarityThreshold %s, want -1", fp.SimilarityThreshold)
	}
	if _, err := uuid.Parse(fp.Fingerprint); err != nil {
		return "", fmt.Errorf("InstanceFingerprint fingerprint %q is not a UUID", fp.Fingerprint)
	}
	return fp.Fingerprint, nil
}

func request(args []string) error {
	fs := flag.NewFlagSet("request", flag.ContinueOnError)
	socket := fs.String("socket", "/var/eks/shared/connector.sock", "the connector proxy's socket")
	arn := fs.String("arn", "", "the caller's IAM ARN (x-aws-eks-identity-arn); empty sends no header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: ssm-agent request [-arn ARN] PATH")
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", *socket)
		},
	}}
	req, err := http.NewRequest(http.MethodGet, "http://connector"+fs.Arg(0), nil)
	if err != nil {
		return err
	}
	if *arn != "" {
		req.Header.Set("x-aws-eks-identity-arn", *arn)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Printf("status %d\n%s\n", resp.StatusCode, body)
	return err
}
