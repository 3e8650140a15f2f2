package awsfake

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"

	"github.com/ekslink/ekslink/envtest/awstest"
)

func (s *Set) registerSSM() {
	s.SSM.HandleTarget("AmazonSSM.RegisterManagedInstance", s.op(s.SSM, "RegisterManagedInstance", s.registerManagedInstance))
}

// registerManagedInstance checks the request the way SSM does for what the connector can observe:
// anonymous, JSON 1.1, a live activation with registrations left, an RSA-2048 PKIX key, a UUID
// fingerprint. A repeat with the same fingerprint and key for the same activation returns the
// existing instance; the same fingerprint with another key is InstanceAlreadyRegistered.
func (s *Set) registerManagedInstance(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.registerCalls++
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Date") != "" {
		awstest.WriteJSONError(w, 400, "InvalidRequest", "RegisterManagedInstance is an anonymous operation")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		awstest.WriteJSONError(w, 400, "SerializationException", "unexpected Content-Type "+ct)
		return
	}
	var in struct {
		ActivationCode, ActivationID, Fingerprint, PublicKey, PublicKeyType string
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&struct {
		ActivationCode *string `json:"ActivationCode"`
		ActivationID   *string `json:"ActivationId"`
		Fingerprint    *string `json:"Fingerprint"`
		PublicKey      *string `json:"PublicKey"`
		PublicKeyType  *string `json:"PublicKeyType"`
	}{&in.ActivationCode, &in.ActivationID, &in.Fingerprint, &in.PublicKey, &in.PublicKeyType}); err != nil {
		awstest.WriteJSONError(w, 400, "SerializationException", err.Error())
		return
	}
	if in.PublicKeyType != "Rsa" {
		awstest.WriteJSONError(w, 400, "InvalidPublicKey", "PublicKeyType must be Rsa")
		return
	}
	der, err := base64.StdEncoding.DecodeString(in.PublicKey)
	if err != nil {
		awstest.WriteJSONError(w, 400, "InvalidPublicKey", "PublicKey is not base64")
		return
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if rk, ok := pub.(*rsa.PublicKey); err != nil || !ok || rk.N.BitLen() != 2048 {
		awstest.WriteJSONError(w, 400, "InvalidPublicKey", "PublicKey must be a PKIX RSA-2048 public key")
		return
	}
	if _, err := uuid.Parse(in.Fingerprint); err != nil {
		awstest.WriteJSONError(w, 400, "ValidationException", "Fingerprint must be a UUID")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	act, ok := s.activations[in.ActivationID]
	if !ok || act.code != in.ActivationCode {
		awstest.WriteJSONError(w, 400, "InvalidActivation", "Activation "+in.ActivationID+" is not valid")
		return
	}
	if !s.opts.Now().Before(act.expiry) {
		awstest.WriteJSONError(w, 400, "ActivationExpired", "Activation "+in.ActivationID+" has expired")
		return
	}
	used := 0
	for _, inst := range s.instances {
		if inst.ActivationID != act.id {
			continue
		}
		if inst.Fingerprint == in.Fingerprint {
			if inst.PublicKey == in.PublicKey {
				awstest.WriteJSON(w, "application/x-amz-json-1.1", map[string]string{"InstanceId": inst.InstanceID})
				return
			}
			awstest.WriteJSONError(w, 400, "InstanceAlreadyRegistered", "An instance with this fingerprint is already registered")
			return
		}
		used++
	}
	if used >= s.opts.RegistrationLimit {
		awstest.WriteJSONError(w, 400, "RegistrationLimitExceeded", "Activation "+in.ActivationID+" has reached its registration limit")
		return
	}
	inst := Instance{
		// Activations made by EKS RegisterCluster yield "eks_c:<cluster>_<17 word characters>"
		// instance ids (the second alternative of SSM's InstanceId pattern), not "mi-...".
		InstanceID:   "eks_c:" + act.cluster + "_" + randomHex(9)[:17],
		ActivationID: act.id,
		Fingerprint:  in.Fingerprint,
		PublicKey:    in.PublicKey,
		Registered:   s.opts.Now(),
	}
	s.instances = append(s.instances, inst)
	awstest.WriteJSON(w, "application/x-amz-json-1.1", map[string]string{"InstanceId": inst.InstanceID})
}
