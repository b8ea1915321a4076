// Package collectors runs breakwater's collectors the way node_exporter runs
// its own: each registers a name, a default and a factory; the
// --collector.<name> flags follow from that one call; and every scrape
// reports per-collector duration and success so that one failing collector
// is visible and never takes the others down.
package collectors

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/exporter/statefile"
)

// Namespace is the metric prefix of breakwater's own metrics.
const Namespace = "breakwater"

// Collector produces one concern's metrics for a scrape. A collector that
// holds resources (BPF programs, a cAdvisor manager) also implements
// io.Closer.
type Collector interface {
	Update(ch chan<- prometheus.Metric) error
}

// Deps is what the exporter hands every factory.
type Deps struct {
	Logger   *slog.Logger
	Identity *identity.Resolver
	Escapes  escape.Sink // may be nil
	// Health lets a collector report that it runs degraded (for example
	// without BPF) without failing the scrape of the others.
	Health *Health
	// State is the state directory; nil lets a collector use its own
	// configuration's.
	State *statefile.Dir
}

// Factory builds a collector. An error leaves the collector out and is
// reported; it never stops the exporter.
type Factory func(Deps) (Collector, error)

type registration struct {
	name    string
	factory Factory
	enabled *bool
}

var (
	registryMu    sync.Mutex
	registrations = map[string]*registration{}
)

// Register adds a collector and its --collector.<name> flag. Call it from an
// init function of the collector's package.
func Register(name string, defaultEnabled bool, factory Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registrations[name]; dup {
		panic("collectors: duplicate registration of " + name)
	}
	def := "disabled"
	if defaultEnabled {
		def = "enabled"
	}
	flag := kingpin.Flag("collector."+name, fmt.Sprintf("Enable the %s collector (default: %s).", name, def)).
		Default(fmt.Sprint(defaultEnabled)).Bool()
	registrations[name] = &registration{name: name, factory: factory, enabled: flag}
}

// Names lists every registered collector, sorted.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registrations))
	for n := range registrations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var (
	scrapeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "scrape", "collector_duration_seconds"),
		"Duration of a collector scrape.", []string{"collector"}, nil)
	scrapeSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "scrape", "collector_success"),
		"Whether a collector succeeded (1) or failed or could not start (0).", []string{"collector"}, nil)
)

// Set is the enabled collectors, itself a prometheus.Collector.
type Set struct {
	logger     *slog.Logger
	collectors map[string]Collector
	failed     map[string]error // enabled but could not start
}

// New builds every enabled collector. Collectors whose factory fails are
// reported as unsuccessful on every scrape instead of stopping the exporter.
func New(deps Deps) *Set {
	registryMu.Lock()
	defer registryMu.Unlock()
	s := &Set{logger: deps.Logger, collectors: map[string]Collector{}, failed: map[string]error{}}
	for name, r := range registrations {
		if !*r.enabled {
			continue
		}
		// Each collector logs as node_exporter's do: collector=<name>.
		d := deps
		d.Logger = deps.Logger.With("collector", name)
		c, err := r.factory(d)
		if err != nil {
			deps.Logger.Error("collector could not start; serving the others", "collector", name, "err", err)
			s.failed[name] = err
			continue
		}
		deps.Logger.Info("collector enabled", "collector", name)
		s.collectors[name] = c
	}
	return s
}

// Enabled reports whether a collector runs.
func (s *Set) Enabled(name string) bool { _, ok := s.collectors[name]; return ok }

// Get returns a running collector by name.
func (s *Set) Get(name string) (Collector, bool) { c, ok := s.collectors[name]; return c, ok }

// Describe sends nothing: collectors are unchecked because their label sets
// follow the containers on the node.
func (s *Set) Describe(chan<- *prometheus.Desc) {}

// Collect runs every collector concurrently.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for name, c := range s.collectors {
		wg.Add(1)
		go func(name string, c Collector) {
			defer wg.Done()
			s.run(name, c, ch)
		}(name, c)
	}
	for name := range s.failed {
		ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, 0, name)
	}
	wg.Wait()
}

func (s *Set) run(name string, c Collector, ch chan<- prometheus.Metric) {
	start := time.Now()
	err := c.Update(ch)
	ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, time.Since(start).Seconds(), name)
	success := 1.0
	if err != nil {
		success = 0
		s.logger.Error("collector failed", "collector", name, "err", err)
	}
	ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, success, name)
}

// Close releases every collector that holds resources.
func (s *Set) Close() error {
	var errs []error
	for name, c := range s.collectors {
		if cl, ok := c.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
