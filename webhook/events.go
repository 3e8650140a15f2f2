package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EventReasonInvalidAnnotation is the reason of the Warning Event the Handler records on a
// service account when one of its pods was admitted unmutated because of an AnnotationError.
const EventReasonInvalidAnnotation = "InvalidAWSIdentityAnnotation"

// eventInterval limits the Events about one service account and message to one per interval:
// a Deployment scaling up repeats the same problem for every pod.
const eventInterval = 10 * time.Minute

// events records Warning Events in the background, never slowing an admission down.
type events struct {
	h    *Handler
	mu   sync.Mutex
	last map[string]time.Time
}

// invalid records that pod was admitted unmutated because of err, on its service account (the
// pod does not exist yet). Without a service account there is nothing to attach the Event to.
func (e *events) invalid(sa *corev1.ServiceAccount, pod *corev1.Pod, err error) {
	if e == nil || sa == nil {
		return
	}
	now := e.h.opts.Now()
	msg := err.Error()
	key := sa.Namespace + "/" + sa.Name + "\x00" + msg
	e.mu.Lock()
	if t, ok := e.last[key]; ok && now.Sub(t) < eventInterval {
		e.mu.Unlock()
		return
	}
	e.last[key] = now
	for k, t := range e.last { // keep the map bounded by what is recent
		if now.Sub(t) >= eventInterval {
			delete(e.last, k)
		}
	}
	e.mu.Unlock()

	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", sa.Name, now.UnixNano()), Namespace: sa.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "ServiceAccount", APIVersion: "v1", Namespace: sa.Namespace, Name: sa.Name,
			UID: sa.UID, ResourceVersion: sa.ResourceVersion},
		Reason:              EventReasonInvalidAnnotation,
		Message:             fmt.Sprintf("pod %s: %s", orDefault(pod.Name, pod.GenerateName+"*"), msg),
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: "pod-identity-webhook"},
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		Count:               1,
		ReportingController: "ekslink.io/pod-identity-webhook",
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := e.h.client.CoreV1().Events(sa.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			e.h.log.V(1).Info("could not record an Event (RBAC: create events)", "error", err.Error())
		}
	}()
}
