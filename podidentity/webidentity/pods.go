package webidentity

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// pods tells whether the pod a token is bound to still exists: an informer on the node's pods
// (every pod when no node is set), stripped to name, namespace, uid and node. A pod the informer
// has not seen yet (just created) is read once from the API server; that happens only for tokens
// whose signature verified.
type pods struct {
	client   kubernetes.Interface
	node     string
	informer cache.SharedIndexInformer
}

func newPods(client kubernetes.Interface, node string) *pods {
	p := &pods{client: client, node: node}
	var sel string
	if node != "" {
		sel = fields.OneTermEqualSelector("spec.nodeName", node).String()
	}
	api := client.CoreV1().Pods(metav1.NamespaceAll)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return api.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return api.Watch(ctx, o)
		},
	}
	p.informer = cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = p.informer.SetTransform(func(obj any) (any, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return obj, nil
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion},
			Spec:       corev1.PodSpec{NodeName: pod.Spec.NodeName},
		}, nil
	})
	return p
}

// podGone is a token whose pod does not exist (any more), or is another pod now.
type podGone struct{ reason string }

func (e *podGone) Error() string { return e.reason }

// check returns nil when the pod exists with that uid (and runs on the agent's node when one is
// set), a *podGone when it does not, or another error when the API server could not tell.
func (p *pods) check(ctx context.Context, namespace, name, uid string) error {
	obj, found, err := p.informer.GetStore().GetByKey(namespace + "/" + name)
	var pod *corev1.Pod
	if err == nil && found {
		pod = obj.(*corev1.Pod)
	}
	if pod == nil || string(pod.UID) != uid {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		live, err := p.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return &podGone{fmt.Sprintf("pod %s/%s the token is bound to no longer exists", namespace, name)}
		}
		if err != nil {
			return fmt.Errorf("webidentity: reading pod %s/%s: %w", namespace, name, err)
		}
		pod = live
	}
	if string(pod.UID) != uid {
		return &podGone{fmt.Sprintf("pod %s/%s the token is bound to was deleted (uid %s; a new pod of that name has uid %s)", namespace, name, uid, pod.UID)}
	}
	if p.node != "" && pod.Spec.NodeName != p.node {
		return &podGone{fmt.Sprintf("pod %s/%s runs on node %q, not on this agent's node %q", namespace, name, pod.Spec.NodeName, p.node)}
	}
	return nil
}
