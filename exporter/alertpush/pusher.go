// Package alertpush pushes escape attempts straight to Alertmanager's api/v2
// the moment they happen, so the page does not wait for a scrape and a rule
// evaluation. Alerts carry the rule alerts' names and labels, so
// Alertmanager treats a pushed and an evaluated alert as one.
package alertpush

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	clientruntime "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/rules"
)

// maxBatch bounds one POST, as Prometheus' notifier does.
const maxBatch = 64

// Pusher turns escape events into Alertmanager alerts. Push only enqueues;
// Run folds and delivers.
type Pusher struct {
	logger   *slog.Logger
	cfg      Config
	in       chan escape.Event
	targets  []*target
	external map[string]string
	policy   policy
	now      func() time.Time

	// Owned by Run's goroutine: the alerts by label-set signature, and the
	// attempts of containers no runtime has named yet.
	folds   map[uint64]*fold
	waiting map[string]*waiter // by container id
	answers chan answer

	notifications *prometheus.CounterVec
	latency       prometheus.Histogram

	// The state file: behind what is pending (set by any goroutine),
	// and, for Run's goroutine, how the last save went.
	stateDirty atomic.Bool
	savedEmpty bool
	saveErr    error
	restored   []escape.Event // waiting for a name when the last run ended
}

// fold is one pushed alert and the attempts it counts.
type fold struct {
	name     string
	labels   map[string]string
	first    time.Time // startsAt
	last     time.Time // endsAt is last + ResolveTimeout
	count    int
	event    escape.Event // the latest attempt, described in the annotations
	dirty    bool         // count changed since lastSent
	lastSent time.Time
}

// target is one Alertmanager and the alerts waiting for it.
type target struct {
	url  string
	api  *amclient.AlertmanagerAPI
	wake chan struct{}

	mu      sync.Mutex
	pending map[uint64]*item // newest version per alert
	seq     uint64
}

type item struct {
	key       uint64
	alert     *models.PostableAlert
	endsAt    time.Time
	seq       uint64    // order of arrival, the oldest is dropped on overflow
	eventTime time.Time // for the latency histogram; zero on re-sends
}

// New builds a Pusher with one api/v2 client per configured Alertmanager.
func New(logger *slog.Logger, cfg *Config) (*Pusher, error) {
	if !cfg.Enabled() {
		return nil, errors.New("alertpush: no --alertmanager.url configured")
	}
	c := *cfg
	if logger == nil {
		logger = slog.Default()
	}
	if c.QueueCapacity < 1 {
		return nil, fmt.Errorf("alertpush: --alertmanager.queue-capacity must be positive, got %d", c.QueueCapacity)
	}
	if c.FoldWindow <= 0 || c.ResolveTimeout <= c.FoldWindow || c.ResendDelay <= 0 || c.ResendDelay >= c.ResolveTimeout {
		// A fold is re-sent every fold window and every resend delay; each
		// re-send must land before the alert's endsAt passes.
		return nil, fmt.Errorf("alertpush: need 0 < fold-window (%s) < resolve-timeout (%s) and 0 < resend-delay (%s) < resolve-timeout",
			c.FoldWindow, c.ResolveTimeout, c.ResendDelay)
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.State == nil {
		c.State = statefile.New("")
	}
	if c.IdentityWait < 0 {
		return nil, fmt.Errorf("alertpush: --alertmanager.identity-wait must not be negative, got %s", c.IdentityWait)
	}
	for k := range c.ExternalLabels {
		// Classic names: they must match rule labels and Alertmanager
		// matchers, which UTF-8 names would need quoting for.
		if !model.LegacyValidation.IsValidLabelName(k) {
			return nil, fmt.Errorf("alertpush: invalid external label name %q", k)
		}
	}

	rc := rules.Default()
	switch {
	case c.Rules != nil:
		rc = *c.Rules
	case c.RulesConfigFile != "":
		var err error
		if rc, err = rules.Load(c.RulesConfigFile); err != nil {
			return nil, fmt.Errorf("alertpush: --alertmanager.rules-config: %w", err)
		}
	}
	pol, err := newPolicy(rc)
	if err != nil {
		return nil, fmt.Errorf("alertpush: rules configuration: %w", err)
	}
	for _, problem := range pol.checkLabels(c.ExternalLabels) {
		logger.Warn("pushed escape alerts will not merge with the evaluated ones", "problem", problem)
	}

	httpCfg := config.DefaultHTTPClientConfig
	if c.HTTPConfigFile != "" {
		hc, _, err := config.LoadHTTPConfigFile(c.HTTPConfigFile)
		if err != nil {
			return nil, fmt.Errorf("alertpush: loading %s: %w", c.HTTPConfigFile, err)
		}
		httpCfg = *hc
	}
	httpClient, err := config.NewClientFromConfig(httpCfg, "breakwater_alertmanager")
	if err != nil {
		return nil, fmt.Errorf("alertpush: HTTP client: %w", err)
	}

	p := &Pusher{
		logger:   logger,
		cfg:      c,
		in:       make(chan escape.Event, c.QueueCapacity),
		external: c.ExternalLabels,
		policy:   pol,
		now:      time.Now,
		folds:    map[uint64]*fold{},
		waiting:  map[string]*waiter{},
		answers:  make(chan answer),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: names.MetricAlertmanagerNotifications,
			Help: "Escape alerts pushed to Alertmanager, per Alertmanager and alert, by result: sent (accepted), failed (a delivery attempt failed and is retried), dropped (queue overflow, rejected, or ended before delivery), folded (an attempt counted into an alert already sent).",
		}, []string{names.LabelResult}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: names.MetricAlertmanagerPushLatency,
			Help: "Time from an escape attempt to an Alertmanager accepting the alert it opened.",
			// Factor sqrt(2) from 1ms to 16s, fine enough for a bench to
			// read p50 and p99 from the text exposition.
			Buckets:                         prometheus.ExponentialBucketsRange(0.001, 16, 29),
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}),
	}
	for _, r := range []string{names.PushSent, names.PushFailed, names.PushDropped, names.PushFolded} {
		p.notifications.WithLabelValues(r)
	}

	for _, u := range c.URLs {
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("alertpush: Alertmanager URL %q: want http(s)://host:port[/prefix]", u.Redacted())
		}
		rt := clientruntime.NewWithClient(u.Host, path.Join("/", u.Path, "api/v2"), []string{u.Scheme}, httpClient)
		if u.User != nil {
			if httpCfg.BasicAuth != nil || httpCfg.Authorization != nil || httpCfg.OAuth2 != nil {
				return nil, fmt.Errorf("alertpush: %s: credentials in both the URL and %s", u.Redacted(), c.HTTPConfigFile)
			}
			pw, _ := u.User.Password()
			rt.DefaultAuthentication = clientruntime.BasicAuth(u.User.Username(), pw)
		}
		p.targets = append(p.targets, &target{
			url:     u.Redacted(),
			api:     amclient.New(rt, strfmt.Default),
			wake:    make(chan struct{}, 1),
			pending: map[uint64]*item{},
		})
	}
	p.restore()
	return p, nil
}

// Push queues an event without blocking; a full queue drops and counts it.
func (p *Pusher) Push(e escape.Event) {
	select {
	case p.in <- e:
	default:
		p.notifications.WithLabelValues(names.PushDropped).Inc()
	}
}

// Describe implements prometheus.Collector.
func (p *Pusher) Describe(ch chan<- *prometheus.Desc) {
	p.notifications.Describe(ch)
	p.latency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (p *Pusher) Collect(ch chan<- prometheus.Metric) {
	p.notifications.Collect(ch)
	p.latency.Collect(ch)
}

// Run folds queued events into alerts and delivers them to every
// Alertmanager until ctx ends.
func (p *Pusher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range p.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.deliver(ctx, t)
		}()
	}
	// Re-sends are due per fold window and resend delay; a tick of a
	// quarter of the shorter one keeps them close to due without busy work.
	tick := min(p.cfg.FoldWindow, p.cfg.ResendDelay) / 4
	tick = max(10*time.Millisecond, min(tick, time.Second))
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for _, e := range p.restored {
		p.admit(ctx, e)
	}
	p.restored = nil
	for {
		select {
		case <-ctx.Done():
			// What is still pending or waiting is what the next run
			// delivers.
			wg.Wait()
			p.stateChanged()
			p.saveState()
			return
		case e := <-p.in:
			p.admit(ctx, e)
		case a := <-p.answers:
			p.answered(a)
		case <-ticker.C:
			p.flush()
			p.saveState()
		}
	}
}

// fold opens a new alert for e, sent at once, or counts e into an open one,
// which flush re-sends once its window passes.
func (p *Pusher) fold(e escape.Event) {
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	for _, name := range p.policy.alertNames(e) {
		labels := p.policy.alertLabels(name, e, p.external)
		key := model.LabelsToSignature(labels) // Alertmanager's identity of an alert
		if f := p.folds[key]; f != nil && e.Time.Sub(f.last) <= p.cfg.FoldWindow {
			f.count += 1 + int(e.Repeats)
			if e.Time.After(f.last) {
				f.last = e.Time
			}
			f.event = e
			f.dirty = true
			p.notifications.WithLabelValues(names.PushFolded).Inc()
			continue
		}
		if _, ok := p.folds[key]; !ok && len(p.folds) >= p.cfg.QueueCapacity {
			p.evictFold()
		}
		f := &fold{name: name, labels: labels, first: e.Time, last: e.Time, count: 1 + int(e.Repeats), event: e}
		p.folds[key] = f
		p.send(key, f, e.Time)
	}
}

// evictFold forgets the fold with the oldest attempt: it is only no longer
// re-sent, Alertmanager still resolves it at its endsAt.
func (p *Pusher) evictFold() {
	var (
		oldest uint64
		at     time.Time
		found  bool
	)
	for k, f := range p.folds {
		if !found || f.last.Before(at) {
			oldest, at, found = k, f.last, true
		}
	}
	delete(p.folds, oldest)
}

// flush re-sends folds whose count changed a fold window ago or that were
// last sent a resend delay ago, and forgets folds that have ended.
func (p *Pusher) flush() {
	now := p.now()
	for key, f := range p.folds {
		switch {
		case f.dirty && now.Sub(f.lastSent) >= p.cfg.FoldWindow:
			p.send(key, f, time.Time{})
		case !now.Before(f.last.Add(p.cfg.ResolveTimeout)):
			delete(p.folds, key)
		case now.Sub(f.lastSent) >= p.cfg.ResendDelay:
			p.send(key, f, time.Time{})
		}
	}
}

// send queues the fold's current state for every Alertmanager.
func (p *Pusher) send(key uint64, f *fold, eventTime time.Time) {
	endsAt := f.last.Add(p.cfg.ResolveTimeout)
	a := &models.PostableAlert{
		Alert:       models.Alert{Labels: models.LabelSet(f.labels)},
		Annotations: models.LabelSet(p.policy.annotations(f.name, f.labels, f.event, f.count, f.first)),
		StartsAt:    strfmt.DateTime(f.first),
		EndsAt:      strfmt.DateTime(endsAt),
	}
	f.dirty = false
	f.lastSent = p.now()
	p.enqueue(&item{key: key, alert: a, endsAt: endsAt, eventTime: eventTime})
}

// end queues the fold's alert as ended at, its description saying which
// container it turned out to be (renamed, the identity it goes on with).
func (p *Pusher) end(key uint64, f *fold, at time.Time, renamed escape.Event) {
	ann := p.policy.annotations(f.name, f.labels, f.event, f.count, f.first)
	ann[names.AnnotationDescription] += " Renamed: the " + who(renamed.Identity) + "; the alert goes on with its name."
	a := &models.PostableAlert{
		Alert:       models.Alert{Labels: models.LabelSet(f.labels)},
		Annotations: models.LabelSet(ann),
		StartsAt:    strfmt.DateTime(f.first),
		EndsAt:      strfmt.DateTime(at),
	}
	// Delivered until the alert would have ended anyway.
	p.enqueue(&item{key: key, alert: a, endsAt: f.last.Add(p.cfg.ResolveTimeout)})
}

func (p *Pusher) enqueue(it *item) {
	for _, t := range p.targets {
		c := *it
		if t.enqueue(&c, p.cfg.QueueCapacity) {
			p.notifications.WithLabelValues(names.PushDropped).Inc()
		}
	}
	p.stateChanged()
}

// enqueue replaces a pending older version of the alert or adds it,
// dropping the oldest pending alert when full; it reports a drop.
func (t *target) enqueue(it *item, capacity int) (dropped bool) {
	t.mu.Lock()
	t.seq++
	it.seq = t.seq
	if old, ok := t.pending[it.key]; ok {
		// The newer version wins, but an unmeasured re-send must not erase
		// the first version's latency sample.
		if it.eventTime.IsZero() {
			it.eventTime = old.eventTime
		}
		it.seq = old.seq
	} else if len(t.pending) >= capacity {
		var oldest *item
		for _, o := range t.pending {
			if oldest == nil || o.seq < oldest.seq {
				oldest = o
			}
		}
		delete(t.pending, oldest.key)
		dropped = true
	}
	t.pending[it.key] = it
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return dropped
}

// batch returns up to maxBatch pending alerts, oldest first, after dropping
// those that ended while waiting: delivering them would change nothing.
func (t *target) batch(now time.Time) (batch []*item, expired int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, it := range t.pending {
		if !now.Before(it.endsAt) {
			delete(t.pending, k)
			expired++
			continue
		}
		batch = append(batch, it)
	}
	sort.Slice(batch, func(i, j int) bool { return batch[i].seq < batch[j].seq })
	if len(batch) > maxBatch {
		batch = batch[:maxBatch]
	}
	return batch, expired
}

// done removes delivered alerts unless a newer version arrived meanwhile.
func (t *target) done(batch []*item) {
	t.mu.Lock()
	for _, it := range batch {
		if t.pending[it.key] == it {
			delete(t.pending, it.key)
		} else if cur := t.pending[it.key]; cur != nil && cur.eventTime.Equal(it.eventTime) {
			cur.eventTime = time.Time{} // already measured
		}
	}
	t.mu.Unlock()
}

// deliver posts t's pending alerts until ctx ends, backing off
// exponentially while the Alertmanager fails.
func (p *Pusher) deliver(ctx context.Context, t *target) {
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		for ctx.Err() == nil {
			batch, expired := t.batch(p.now())
			if expired > 0 {
				p.stateChanged()
				p.notifications.WithLabelValues(names.PushDropped).Add(float64(expired))
				p.logger.Warn("alerts ended before Alertmanager accepted them", "alertmanager", t.url, "alerts", expired)
			}
			if len(batch) == 0 {
				break
			}
			err := p.post(ctx, t, batch)
			var bad *amalert.PostAlertsBadRequest
			switch {
			case err == nil:
				now := p.now()
				for _, it := range batch {
					if !it.eventTime.IsZero() {
						p.latency.Observe(now.Sub(it.eventTime).Seconds())
					}
				}
				t.done(batch)
				p.stateChanged()
				p.notifications.WithLabelValues(names.PushSent).Add(float64(len(batch)))
				if backoff > 0 {
					p.logger.Info("Alertmanager accepts alerts again", "alertmanager", t.url)
				}
				backoff = 0
				continue
			case errors.As(err, &bad):
				// Retrying a rejected alert cannot help.
				t.done(batch)
				p.stateChanged()
				p.notifications.WithLabelValues(names.PushDropped).Add(float64(len(batch)))
				p.logger.Error("Alertmanager rejected alerts", "alertmanager", t.url, "alerts", len(batch), "err", bad.Payload)
				continue
			case ctx.Err() != nil:
				return
			}
			p.notifications.WithLabelValues(names.PushFailed).Add(float64(len(batch)))
			backoff = min(max(2*backoff, p.cfg.MinBackoff), p.cfg.MaxBackoff)
			p.logger.Warn("pushing alerts to Alertmanager failed, retrying", "alertmanager", t.url, "alerts", len(batch), "retry_in", backoff, "err", err)
			timer := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
	}
}

func (p *Pusher) post(ctx context.Context, t *target, batch []*item) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	alerts := make(models.PostableAlerts, len(batch))
	for i, it := range batch {
		alerts[i] = it.alert
	}
	_, err := t.api.Alert.PostAlerts(amalert.NewPostAlertsParamsWithContext(ctx).WithAlerts(alerts))
	return err
}

var (
	_ escape.Sink          = (*Pusher)(nil)
	_ prometheus.Collector = (*Pusher)(nil)
)
