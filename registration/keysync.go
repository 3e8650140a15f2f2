package registration

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ekslink/ekslink/internal/filewatch"
	"github.com/ekslink/ekslink/internal/promreg"
	"github.com/ekslink/ekslink/statestore"
)

// KeySyncOptions configure a KeySync. Every zero value means the documented default.
type KeySyncOptions struct {
	// Logger (default discard).
	Logger logr.Logger
	// Registerer receives the metrics; nil keeps them unregistered (never the global registry).
	Registerer prometheus.Registerer
	// Interval is the periodic check, a safety net for missed file events (default 30s).
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the pause after a failed check (defaults 500ms and 1m). Failed
	// checks are retried forever.
	MinBackoff, MaxBackoff time.Duration
	// CheckTimeout bounds one check, including the store write (default 30s).
	CheckTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// KeySync copies keys the SSM agent rotates in the vault into the durable state, so a rotated key
// survives the loss of the vault's emptyDir. It watches the vault directory (fsnotify) and checks
// periodically; it saves only a complete, parseable RegistrationKey with the state's instance id
// whose private key parses (the public key is derived from it: the agent's own publicKey is stale
// or empty after a rotation),
// keeps the previous key in the state, retries store errors forever with backoff, and reports the
// window in which the vault holds a key the store does not have through Ready, a metric and a log
// line.
type KeySync struct {
	store    statestore.Store
	vaultDir string
	opts     KeySyncOptions

	mu            sync.Mutex
	readyErr      error
	unsyncedSince time.Time

	unsynced prometheus.Gauge
	syncs    prometheus.Counter
	failures prometheus.Counter
	lastSync prometheus.Gauge
	checks   chan struct{}

	// newWatcher creates the file watcher (a test hook; fsnotify.NewWatcher).
	newWatcher func() (*fsnotify.Watcher, error)
}

// ErrUnsynced is matched by Ready while the vault's key is not (known to be) in the store.
var ErrUnsynced = errors.New("registration: vault key not synced to the state store")

// NewKeySync returns a KeySync that copies the key of the vault directory vaultDir into store; it
// validates opts and registers the metrics.
func NewKeySync(store statestore.Store, vaultDir string, opts KeySyncOptions) (*KeySync, error) {
	if vaultDir == "" || store == nil {
		return nil, fmt.Errorf("%w: KeySync needs a vault directory and a state store", ErrInvalidInput)
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(time.Minute, opts.MinBackoff)
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	k := &KeySync{
		store:    store,
		vaultDir: vaultDir,
		opts:     opts,
		readyErr: fmt.Errorf("%w: not checked yet", ErrUnsynced),
		unsynced: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ekslink_registration_key_unsynced",
			Help: "1 while the SSM vault holds a registration key that is not (known to be) saved in the state store."}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "ekslink_registration_key_syncs_total",
			Help: "Rotated registration keys saved to the state store."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "ekslink_registration_key_sync_failures_total",
			Help: "Failed checks (unreadable vault key, store errors)."}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ekslink_registration_key_last_synced_timestamp_seconds",
			Help: "Unix time the vault key was last confirmed in the state store."}),
		checks:     make(chan struct{}, 1),
		newWatcher: fsnotify.NewWatcher,
	}
	promreg.All(opts.Registerer, &k.unsynced, &k.syncs, &k.failures, &k.lastSync)
	k.unsynced.Set(1)
	return k, nil
}

// Ready returns nil when the vault's key is confirmed in the store, else an error matching
// ErrUnsynced that says since when and why. Use it as a readiness check.
func (k *KeySync) Ready() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.readyErr
}

// KeySyncMetrics are the collectors of a KeySync (also registered on KeySyncOptions.Registerer).
type KeySyncMetrics struct {
	Unsynced, LastSync prometheus.Gauge
	Syncs, Failures    prometheus.Counter
}

// Metrics returns the KeySync's collectors.
func (k *KeySync) Metrics() KeySyncMetrics {
	return KeySyncMetrics{Unsynced: k.unsynced, LastSync: k.lastSync, Syncs: k.syncs, Failures: k.failures}
}

// Trigger asks for a check soon (for example after the caller wrote the vault).
func (k *KeySync) Trigger() {
	select {
	case k.checks <- struct{}{}:
	default:
	}
}

func (k *KeySync) setResult(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.opts.Now()
	if err == nil {
		if k.readyErr != nil && !k.unsyncedSince.IsZero() {
			k.opts.Logger.Info("registration key synced", "unsyncedFor", now.Sub(k.unsyncedSince).Round(time.Millisecond).String())
		}
		k.readyErr, k.unsyncedSince = nil, time.Time{}
		k.unsynced.Set(0)
		k.lastSync.Set(float64(now.UnixNano()) / 1e9)
		return
	}
	k.failures.Inc()
	if k.unsyncedSince.IsZero() {
		k.unsyncedSince = now
		k.opts.Logger.Error(err, "registration key not synced to the state store; retrying until it is (the cluster is locked out if the vault is lost meanwhile)")
	} else {
		k.opts.Logger.V(1).Info("registration key still not synced", "error", err.Error())
	}
	k.readyErr = fmt.Errorf("%w since %s: %w", ErrUnsynced, k.unsyncedSince.UTC().Format(time.RFC3339), err)
	k.unsynced.Set(1)
}

// Run watches and syncs until ctx ends; it returns nil then. If the file watcher cannot be created
// (for example the inotify instance limit is reached) or stops, or the directory cannot be watched
// yet, the periodic check keeps the sync going: it never stops before ctx ends.
func (k *KeySync) Run(ctx context.Context) error {
	// The directory is watched, not the file: the agent may replace the file, and the watch must
	// survive. A directory that does not exist yet is watched from the periodic check on.
	changes := filewatch.Start(ctx, filewatch.Options{
		Files: []string{filepath.Join(k.vaultDir, filepath.FromSlash(RegistrationKeyFile))}, Interval: k.opts.Interval,
		Logger: k.opts.Logger, NewWatcher: k.newWatcher,
	})
	var retry *time.Timer
	var retryC <-chan time.Time
	backoff := k.opts.MinBackoff
	check := func() {
		err := k.check(ctx)
		if ctx.Err() != nil {
			return
		}
		k.setResult(err)
		if retry != nil {
			retry.Stop()
			retry, retryC = nil, nil
		}
		if err != nil {
			retry = time.NewTimer(backoff)
			retryC = retry.C
			backoff = min(backoff*2, k.opts.MaxBackoff)
		} else {
			backoff = k.opts.MinBackoff
		}
	}
	check()
	for {
		select {
		case <-ctx.Done():
			if retry != nil {
				retry.Stop()
			}
			return nil
		case _, ok := <-changes:
			if ok {
				check()
			}
		case <-k.checks:
			check()
		case <-retryC:
			retry, retryC = nil, nil
			check()
		}
	}
}

// SyncOnce performs one check: it reads the vault key and saves it to the store if it changed.
func (k *KeySync) SyncOnce(ctx context.Context) error {
	err := k.check(ctx)
	k.setResult(err)
	return err
}

func (k *KeySync) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.opts.CheckTimeout)
	defer cancel()
	rk, err := ReadRegistrationKey(k.vaultDir)
	if err != nil {
		return fmt.Errorf("reading the vault key: %w", err)
	}
	if err := rk.Validate(); err != nil {
		return err
	}
	key, err := rk.Key().WithPublicKey()
	if err != nil {
		return err
	}
	saved := false
	_, err = statestore.Update(ctx, k.store, func(doc *statestore.Document) error {
		saved = false
		st, err := decodeState(doc)
		if err != nil {
			return err
		}
		if !st.Registered() {
			return fmt.Errorf("the state store holds no completed registration; refusing to save the vault key into it")
		}
		if st.InstanceID != rk.InstanceID {
			return fmt.Errorf("the vault key belongs to instance %s but the state to %s; not saving it", rk.InstanceID, st.InstanceID)
		}
		if st.Key.PrivateKey == key.PrivateKey {
			return statestore.ErrNoChange
		}
		st.PreviousKeys = append([]Key{st.Key}, st.PreviousKeys...)
		if len(st.PreviousKeys) > MaxPreviousKeys {
			st.PreviousKeys = st.PreviousKeys[:MaxPreviousKeys]
		}
		st.Key = key
		st.UpdatedAt = k.opts.Now().UTC()
		saved = true
		return encodeState(doc, st)
	}, &statestore.UpdateOptions{MaxAttempts: 20})
	if err != nil {
		return fmt.Errorf("saving the rotated key: %w", err)
	}
	if saved {
		k.syncs.Inc()
		k.opts.Logger.Info("rotated registration key saved to the state store", "instanceID", rk.InstanceID, "keyCreated", key.CreatedDate)
	}
	return nil
}
