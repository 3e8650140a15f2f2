//go:build loadtest

package awsauth_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/envtest"
)

// TestLoadEditorVsDirectUpdate compares 10 concurrent writers adding roles through the Editor
// (parse, validate, guard, render, self-check, resourceVersion precondition) with the same writers
// doing a bare get/append/update loop on the ConfigMap string (the direct path), on a real API server.
func TestLoadEditorVsDirectUpdate(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	const writers, each = 10, 10

	run := func(write func(ns string, w, i int) error) (time.Duration, []time.Duration) {
		ns := env.Namespace(t)
		seed(t, env, ns, existing)
		lat := make([][]time.Duration, writers)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					t0 := time.Now()
					if err := write(ns, w, i); err != nil {
						t.Error(err)
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			})
		}
		wg.Wait()
		d := time.Since(start)
		// That ParseData reads what aws-iam-authenticator reads is checked in test/interop/awsauth.
		if c, err := awsauth.ParseData(current(t, env, ns).Data); err != nil {
			t.Error(err)
		} else if len(c.Roles) != 2+writers*each {
			t.Errorf("%d roles, want %d", len(c.Roles), 2+writers*each)
		}
		all := slices.Concat(lat...)
		slices.Sort(all)
		return d, all
	}
	direct := func(ns string, w, i int) error {
		cms := env.Client.CoreV1().ConfigMaps(ns)
		for {
			cm, err := cms.Get(ctx, awsauth.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cm.Data["mapRoles"] += fmt.Sprintf("- rolearn: arn:aws:iam::111122223333:role/w%d-%d\n  username: w%d\n  groups:\n  - team\n", w, i, w)
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				continue
			}
			return err
		}
	}
	// One Editor per writer, as a controller or pipeline step would hold it.
	var edMu sync.Mutex
	editors := map[string]*awsauth.Editor{}
	editor := func(ns string, w, i int) error {
		edMu.Lock()
		key := fmt.Sprint(ns, w)
		ed := editors[key]
		if ed == nil {
			ed = awsauth.NewEditor(env.Client, awsauth.Options{Namespace: ns})
			editors[key] = ed
		}
		edMu.Unlock()
		_, err := ed.UpsertRole(ctx, awsauth.RoleMapping{RoleARN: fmt.Sprintf("arn:aws:iam::111122223333:role/w%d-%d", w, i), Username: fmt.Sprintf("w%d", w), Groups: []string{"team"}}, awsauth.EditOptions{})
		return err
	}
	dDirect, lDirect := run(direct)
	dEditor, lEditor := run(editor)
	n := float64(writers * each)
	t.Logf("LOAD aws-auth editor vs bare get/update, %d writers x %d: ratio=%.2f throughput=%.0f/s direct=%.0f/s p50=%s p99=%s direct_p50=%s direct_p99=%s",
		writers, each, dDirect.Seconds()/dEditor.Seconds(), n/dEditor.Seconds(), n/dDirect.Seconds(),
		lEditor[len(lEditor)/2], lEditor[len(lEditor)*99/100], lDirect[len(lDirect)/2], lDirect[len(lDirect)*99/100])
}
