package awsfake

import (
	"fmt"
	"slices"
)

// AddClientID adds a client id (audience) to an IAM OIDC provider, as
// iam:AddClientIDToOpenIDConnectProvider does: adding one it already has changes nothing.
func (s *Set) AddClientID(providerARN, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.providers[providerARN]
	if p == nil {
		return fmt.Errorf("awsfake: NoSuchEntity: OpenIDConnect provider %s not found", providerARN)
	}
	if !slices.Contains(p.ClientIDs, clientID) {
		p.ClientIDs = append(slices.Clone(p.ClientIDs), clientID)
	}
	return nil
}
