package podidentity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ekslink/ekslink/internal/filewatch"
	"github.com/ekslink/ekslink/internal/promreg"
)

// MaxSharedCredentialsInterval is the longest periodic re-read interval of SharedCredentialsFile:
// the upstream EKS Pod Identity agent re-reads the file every minute (its --rotate-credentials).
const MaxSharedCredentialsInterval = time.Minute

// SharedCredentialsOptions configure NewSharedCredentialsFile. Every zero value means the
// documented default.
type SharedCredentialsOptions struct {
	// File is the shared credentials file (default: AWS_SHARED_CREDENTIALS_FILE, else the SDK's
	// default, ~/.aws/credentials).
	File string
	// Profile is the profile read from it (default "default", as the upstream agent does).
	Profile string
	// Interval is the periodic re-read interval besides file events (default and maximum
	// MaxSharedCredentialsInterval).
	Interval time.Duration
	// Debounce is how long Run waits after a file event for the writes to settle before it reads
	// (default 100ms).
	Debounce time.Duration
	// Logger receives one line per load that fails or changes the keys; keys are never logged,
	// only the access key id.
	Logger logr.Logger
	// Now is the clock of load times and of the credentials' Expires (default time.Now).
	Now func() time.Time
	// Registerer, when set, receives ekslink_shared_credentials_reloads_total{result} (result:
	// changed, unchanged, error) and ekslink_shared_credentials_loaded (1 while keys are loaded, 0
	// after a failed load).
	Registerer prometheus.Registerer

	// lookupEnv reads AWS_SHARED_CREDENTIALS_FILE (default os.LookupEnv); tests of this
	// package set it. Embedders that must not follow the environment set File.
	lookupEnv func(string) (string, bool)
}

// SharedCredentialsFile is an aws.CredentialsProvider for a shared credentials file that is
// rewritten while the process runs (EKS hybrid nodes: nodeadm, the SSM agent or IAM Roles Anywhere
// rotate the node's credentials in place). The SDK's own shared-file provider reads the file once;
// this one re-reads it on every file event in its directory (fsnotify, see Run) and at least every
// Interval, parsing it with the SDK's config.LoadSharedConfigProfile.
//
// It fails closed: when a read fails (file missing, not parsable, profile or keys absent) the
// previous keys are dropped and Retrieve returns an error until a read succeeds again, so nothing is
// signed with keys the file no longer holds. The file carries no expiry, so there is no way to
// tell whether the previous keys are still valid; a rotation typically revokes them, and the next
// write to the file triggers a new read at once. Err reports the state for readiness probes.
type SharedCredentialsFile struct {
	file, profile string
	interval      time.Duration
	debounce      time.Duration
	log           logr.Logger
	now           func() time.Time

	reloads *prometheus.CounterVec
	loaded  prometheus.Gauge

	// watching is closed once Run watches the directory (or gave up trying); tests wait for it.
	watching     chan struct{}
	watchingOnce sync.Once

	mu       sync.Mutex // serializes reads
	lastRead time.Time
	state    atomic.Pointer[sharedCredsState]
}

type sharedCredsState struct {
	creds aws.Credentials // zero when err is set
	err   error
	at    time.Time
}

// NewSharedCredentialsFile validates the options and reads the file once. A failed first read is
// not an error of NewSharedCredentialsFile: it is reported by Err and Retrieve until a read succeeds.
func NewSharedCredentialsFile(ctx context.Context, opts SharedCredentialsOptions) (*SharedCredentialsFile, error) {
	lookup := opts.lookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	file := opts.File
	if file == "" {
		if v, ok := lookup("AWS_SHARED_CREDENTIALS_FILE"); ok && v != "" {
			file = v
		} else {
			file = config.DefaultSharedCredentialsFilename()
		}
	}
	switch {
	case opts.Interval < 0:
		return nil, fmt.Errorf("podidentity: SharedCredentialsOptions.Interval %s is negative", opts.Interval)
	case opts.Interval > MaxSharedCredentialsInterval:
		return nil, fmt.Errorf("podidentity: SharedCredentialsOptions.Interval %s is longer than %s: rotated node credentials would be picked up too late", opts.Interval, MaxSharedCredentialsInterval)
	case opts.Interval == 0:
		opts.Interval = MaxSharedCredentialsInterval
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.Profile == "" {
		opts.Profile = config.DefaultSharedConfigProfile
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	p := &SharedCredentialsFile{
		file: file, profile: opts.Profile, interval: opts.Interval, debounce: opts.Debounce,
		log: opts.Logger, now: opts.Now, watching: make(chan struct{}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ekslink_shared_credentials_reloads_total",
			Help: "Reads of the shared credentials file by result (changed, unchanged, error).",
		}, []string{"result"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ekslink_shared_credentials_loaded",
			Help: "1 while keys from the shared credentials file are loaded, 0 after a failed read (nothing is signed then).",
		}),
	}
	if r := opts.Registerer; r != nil {
		p.reloads = promreg.Adopt(r, p.reloads)
		p.loaded = promreg.Adopt(r, p.loaded)
	}
	_ = p.Reload(ctx, "start")
	return p, nil
}

// File is the path of the shared credentials file.
func (p *SharedCredentialsFile) File() string { return p.file }

// Err is nil while keys are loaded, else the error of the last read.
func (p *SharedCredentialsFile) Err() error {
	if s := p.state.Load(); s != nil {
		return s.err
	}
	return errors.New("podidentity: shared credentials file not read yet")
}

// SharedCredentialsError is returned by Retrieve and Err after a failed read.
type SharedCredentialsError struct {
	// File and Profile are what was read.
	File, Profile string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *SharedCredentialsError) Error() string {
	return fmt.Sprintf("podidentity: shared credentials file %s, profile %q: %v; nothing is signed until the file holds aws_access_key_id and aws_secret_access_key again", e.File, e.Profile, e.Err)
}

// Unwrap returns the cause.
func (e *SharedCredentialsError) Unwrap() error { return e.Err }

// Reload reads the file now; reason is logged. It returns the read's error.
func (p *SharedCredentialsFile) Reload(ctx context.Context, reason string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.lastRead = now
	creds, err := p.read(ctx)
	old := p.state.Load()
	next := &sharedCredsState{creds: creds, at: now}
	result := "unchanged"
	switch {
	case err != nil:
		next = &sharedCredsState{err: &SharedCredentialsError{File: p.file, Profile: p.profile, Err: err}, at: now}
		result = "error"
		if old == nil || old.err == nil || old.err.Error() != next.err.Error() {
			p.log.Error(next.err, "shared credentials file unusable; signing stops until it is fixed", "reason", reason)
		}
	case old == nil || old.err != nil || old.creds != creds:
		result = "changed"
		p.log.Info("loaded shared credentials", "file", p.file, "profile", p.profile, "accessKeyID", creds.AccessKeyID, "reason", reason)
	}
	p.state.Store(next)
	p.reloads.WithLabelValues(result).Inc()
	if next.err == nil {
		p.loaded.Set(1)
	} else {
		p.loaded.Set(0)
	}
	return next.err
}

func (p *SharedCredentialsFile) read(ctx context.Context) (aws.Credentials, error) {
	// LoadSharedConfigProfile skips files it cannot open; say so plainly instead of "profile not found".
	if _, err := os.Stat(p.file); err != nil {
		return aws.Credentials{}, err
	}
	sc, err := config.LoadSharedConfigProfile(ctx, p.profile, func(o *config.LoadSharedConfigOptions) {
		o.ConfigFiles = []string{}
		o.CredentialsFiles = []string{p.file}
	})
	if err != nil {
		return aws.Credentials{}, err
	}
	c := sc.Credentials
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return aws.Credentials{}, errors.New("the profile has no aws_access_key_id and aws_secret_access_key")
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, AccountID: c.AccountID}, nil
}

// Retrieve implements aws.CredentialsProvider: the keys of the last successful read, or the read's
// error. When the last read is older than Interval (Run is not running) it reads the file first.
// The credentials expire at the next periodic read, so an aws.CredentialsCache in front of the
// provider asks again by then (without one, a rewrite is used from the next call on).
func (p *SharedCredentialsFile) Retrieve(ctx context.Context) (aws.Credentials, error) {
	s := p.state.Load()
	if s == nil || p.now().Sub(s.at) >= p.interval {
		_ = p.Reload(ctx, "stale")
		s = p.state.Load()
	}
	if s.err != nil {
		return aws.Credentials{}, s.err
	}
	c := s.creds
	c.Source = "SharedCredentialsFile: " + p.file
	c.CanExpire = true
	c.Expires = s.at.Add(p.interval)
	return c, nil
}

// Run re-reads the file on every event in its directory (after Debounce) and every Interval until
// ctx ends. Watching the directory rather than the file sees rewrites by rename and by symlink swap.
// If the directory cannot be watched, the periodic read still runs.
func (p *SharedCredentialsFile) Run(ctx context.Context) {
	for reason := range filewatch.Start(ctx, filewatch.Options{
		Files: []string{p.file}, Interval: p.interval, Debounce: p.debounce, Logger: p.log,
		Watching: func() { p.watchingOnce.Do(func() { close(p.watching) }) },
	}) {
		_ = p.Reload(ctx, reason)
	}
}
