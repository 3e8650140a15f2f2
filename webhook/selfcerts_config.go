package webhook

import (
	"bytes"
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// patchCABundle sets bundle as the caBundle of the webhooks of the configuration that point at
// the Service, and leaves the others alone. The update carries the resourceVersion read; on a
// conflict it re-reads.
func (s *SelfCerts) patchCABundle(ctx context.Context, bundle []byte) error {
	if s.o.WebhookConfigName == "" {
		return nil
	}
	mwcs := s.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	for range 5 {
		mwc, err := mwcs.Get(ctx, s.o.WebhookConfigName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("webhook: reading MutatingWebhookConfiguration %s to set its caBundle: %w", s.o.WebhookConfigName, err)
		}
		changed, matched := 0, 0
		for i := range mwc.Webhooks {
			svc := mwc.Webhooks[i].ClientConfig.Service
			if svc == nil || svc.Namespace != s.service.Namespace || svc.Name != s.service.Name {
				continue
			}
			matched++
			if !bytes.Equal(mwc.Webhooks[i].ClientConfig.CABundle, bundle) {
				mwc.Webhooks[i].ClientConfig.CABundle = bytes.Clone(bundle)
				changed++
			}
		}
		if matched == 0 {
			return fmt.Errorf("webhook: MutatingWebhookConfiguration %s has no webhook whose clientConfig.service is %s/%s: nothing to set the caBundle on (check --service-name and --namespace)",
				s.o.WebhookConfigName, s.service.Namespace, s.service.Name)
		}
		if changed == 0 {
			return nil
		}
		_, err = mwcs.Update(ctx, mwc, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("webhook: setting the caBundle of MutatingWebhookConfiguration %s: %w", s.o.WebhookConfigName, err)
		}
		s.log.Info("caBundle set", "webhookConfiguration", s.o.WebhookConfigName, "webhooks", changed)
		return nil
	}
	return fmt.Errorf("webhook: MutatingWebhookConfiguration %s kept changing while setting its caBundle", s.o.WebhookConfigName)
}
