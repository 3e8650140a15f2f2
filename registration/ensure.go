package registration

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/go-logr/logr"

	"github.com/ekslink/ekslink/statestore"
)

// Activation is an SSM hybrid activation (from "aws eks register-cluster").
type Activation struct {
	ID   string
	Code string
}

// Options configure a Registrar.
type Options struct {
	// Region of the activation (required).
	Region string
	// Client registers with SSM (default: NewFromConfig(aws.Config{Region: Region})).
	Client Registerer
	// Logger receives one line per meaningful event (default: discard). Codes and keys are never logged.
	Logger logr.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// PersistBackoff is the pause between attempts to record a completed registration (default 1s,
	// doubling to 15s); recording is retried until the context ends because a registration that is
	// not recorded is an orphan.
	PersistBackoff time.Duration
}

// Registrar runs the crash-safe registration flow against a state store.
type Registrar struct {
	store      statestore.Store
	activation Activation
	opts       Options
	// crash is a test hook called after each step; a non-nil error aborts the flow there.
	crash func(step string) error
}

// Steps reported to the crash hook.
const (
	stepPendingSaved = "pending-saved"
	stepRegistered   = "registered"
	stepPersisted    = "persisted"
)

// New returns a Registrar for the activation.
func New(store statestore.Store, activation Activation, opts Options) (*Registrar, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: no state store", ErrInvalidInput)
	}
	if err := (RegisterInput{ActivationID: activation.ID, ActivationCode: activation.Code, Fingerprint: "x", PublicKey: "x"}).validate(); err != nil {
		return nil, err
	}
	if opts.Region == "" {
		return nil, fmt.Errorf("%w: no region", ErrInvalidInput)
	}
	if opts.Client == nil {
		c, err := NewFromConfig(aws.Config{Region: opts.Region})
		if err != nil {
			return nil, err
		}
		opts.Client = c
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PersistBackoff <= 0 {
		opts.PersistBackoff = time.Second
	}
	return &Registrar{store: store, activation: activation, opts: opts}, nil
}

func (r *Registrar) step(s string) error {
	if r.crash != nil {
		return r.crash(s)
	}
	return nil
}

// Ensure makes sure the state holds a registration for the activation and returns it. It is
// idempotent and crash-safe:
//
//   - registered for this activation id: the state is returned as is, SSM is not called;
//   - otherwise new key material is persisted as pending before SSM is called, so a crash after
//     SSM registered it retries with the same material (SSM never sees two different keys from one
//     attempt), and the instance id is recorded afterwards, retrying until ctx ends;
//   - a pending state for this activation is reused as is;
//   - a registration (or pending attempt) for another activation id is kept in State.Orphans for
//     the operator instead of being discarded.
//
// Final SSM errors (ErrActivationExpired, ...) are returned as they are; the pending state stays.
func (r *Registrar) Ensure(ctx context.Context) (*State, error) {
	log := r.opts.Logger
	var (
		st      *State
		version string
	)
	for attempt := 0; ; attempt++ {
		cur, v, err := LoadState(ctx, r.store)
		if err != nil {
			return nil, err
		}
		if cur != nil && cur.ActivationID == r.activation.ID {
			if cur.Registered() {
				log.Info("registration found in state, reusing it", "instanceID", cur.InstanceID, "activationID", cur.ActivationID)
				return cur, nil
			}
			log.Info("resuming pending registration with its persisted key material", "fingerprint", cur.Fingerprint, "activationID", cur.ActivationID)
			st, version = cur, v
			break
		}
		next, err := r.newPending(cur)
		if err != nil {
			return nil, err
		}
		nv, err := saveState(ctx, r.store, next, v)
		if errors.Is(err, statestore.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("registration: persisting new key material before registering: %w", err)
		}
		log.Info("persisted new key material as pending", "fingerprint", next.Fingerprint, "activationID", next.ActivationID)
		st, version = next, nv
		break
	}
	if err := r.step(stepPendingSaved); err != nil {
		return nil, err
	}

	id, err := r.opts.Client.RegisterManagedInstance(ctx, RegisterInput{
		ActivationID: r.activation.ID, ActivationCode: r.activation.Code,
		Fingerprint: st.Fingerprint, PublicKey: st.Key.PublicKey,
	})
	if err != nil {
		return nil, err
	}
	log.Info("registered with SSM", "instanceID", id, "fingerprint", st.Fingerprint)
	if err := r.step(stepRegistered); err != nil {
		return nil, err
	}

	done, err := r.persistRegistered(ctx, st, version, id)
	if err != nil {
		return nil, err
	}
	log.Info("registration recorded", "instanceID", id)
	if err := r.step(stepPersisted); err != nil {
		return nil, err
	}
	return done, nil
}

func (r *Registrar) newPending(prev *State) (*State, error) {
	now := r.opts.Now()
	key, err := GenerateKey(now)
	if err != nil {
		return nil, err
	}
	fp, err := NewFingerprint()
	if err != nil {
		return nil, err
	}
	st := &State{
		ActivationID: r.activation.ID, Region: r.opts.Region, Status: StatusPending,
		Fingerprint: fp, Key: key, UpdatedAt: now.UTC(),
	}
	if prev != nil {
		st.Orphans = append(st.Orphans, prev.Orphans...)
		o := Orphan{ActivationID: prev.ActivationID, InstanceID: prev.InstanceID, Fingerprint: prev.Fingerprint, At: now.UTC()}
		if prev.Registered() {
			o.Reason = fmt.Sprintf("replaced by a registration for activation %s; deregister %s in SSM if it is no longer used", r.activation.ID, prev.InstanceID)
		} else {
			o.Reason = fmt.Sprintf("pending registration abandoned for activation %s; SSM may hold a managed instance with this fingerprint", r.activation.ID)
		}
		st.Orphans = append(st.Orphans, o)
		r.opts.Logger.Info("activation id changed: registering anew and recording the previous registration as an orphan",
			"previousActivationID", prev.ActivationID, "previousInstanceID", prev.InstanceID, "activationID", r.activation.ID)
	}
	return st, nil
}

// persistRegistered records the instance id. A conflict reloads: if the state still holds the same
// pending material it is completed; anything else means another writer replaced it, which is an
// error reported with the instance id so it is not lost.
func (r *Registrar) persistRegistered(ctx context.Context, st *State, version, id string) (*State, error) {
	backoff := r.opts.PersistBackoff
	for {
		done := *st
		done.Status, done.InstanceID = StatusRegistered, id
		done.RegisteredAt = r.opts.Now().UTC()
		done.UpdatedAt = done.RegisteredAt
		_, err := saveState(ctx, r.store, &done, version)
		if err == nil {
			return &done, nil
		}
		if errors.Is(err, statestore.ErrConflict) {
			cur, v, lerr := LoadState(ctx, r.store)
			if lerr == nil {
				switch {
				case cur != nil && cur.Fingerprint == st.Fingerprint && cur.Registered():
					return cur, nil
				case cur != nil && cur.Fingerprint == st.Fingerprint:
					st, version = cur, v
					continue
				default:
					return nil, fmt.Errorf("registration: state was replaced by another writer while registering; managed instance %s (fingerprint %s) is not recorded: deregister it in SSM", id, st.Fingerprint)
				}
			}
			err = lerr
		}
		r.opts.Logger.Error(err, "recording the registration failed, retrying", "instanceID", id, "retryIn", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("registration: managed instance %s registered but not recorded (the next run retries with the same key material): %w", id, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}
