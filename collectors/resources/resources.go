// Package resources is the resources collector: cAdvisor embedded as a
// library (its manager, with the Docker, containerd and raw cgroup
// factories, and its Prometheus collectors), with cAdvisor's metric names and
// `id` label plus breakwater's identity labels, and
// breakwater_container_restarts_total fed by cgroup creation.
package resources

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/cadvisor/cache/memory"
	"github.com/google/cadvisor/container"
	info "github.com/google/cadvisor/info/v1"
	v2 "github.com/google/cadvisor/info/v2"
	"github.com/google/cadvisor/manager"
	"github.com/google/cadvisor/metrics"
	"github.com/google/cadvisor/utils/sysfs"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	// The runtimes whose containers cAdvisor names itself; anything else
	// falls back to the raw cgroup factory, which the manager always adds.
	_ "github.com/google/cadvisor/container/containerd/install"
	_ "github.com/google/cadvisor/container/docker/install"

	"github.com/breakwater/breakwater/collectors"
	"github.com/breakwater/breakwater/exporter/identity"
)

// DefaultMetrics are the cAdvisor metric sets the rules and dashboards use:
// CPU usage and CFS throttling, memory (working set, RSS; the spec limit is
// always there) and OOM events. Container spec and start time and the
// machine metrics come regardless.
const DefaultMetrics = "cpu,memory,oom_event"

var (
	flagMetrics      = container.MetricSet{}
	flagAllCgroups   *bool
	flagHousekeeping *time.Duration
	flagDockerEvents *bool
	flagRetention    *time.Duration
)

func init() {
	kingpin.Flag("collector.resources.metrics",
		"Comma-separated cAdvisor metric sets to collect, as cAdvisor's --enable_metrics (for example "+DefaultMetrics+",network,diskIO,pressure).").
		Default(DefaultMetrics).SetValue(&flagMetrics)
	flagAllCgroups = kingpin.Flag("collector.resources.all-cgroups",
		"Also export cgroups that belong to no container (the root, system services, pod-level cgroups).").Default("false").Bool()
	flagHousekeeping = kingpin.Flag("collector.resources.housekeeping-interval",
		"How often cAdvisor samples each container (kubelet uses 10s).").Default("10s").Duration()
	flagDockerEvents = kingpin.Flag("collector.resources.docker-events",
		"Count container starts from Docker's event stream as well as from BPF cgroup creation (needed when BPF is off).").Default("true").Bool()
	flagRetention = kingpin.Flag("collector.resources.restarts-retention",
		"How long breakwater_container_restarts_total of a name (or pod container) without a running container is kept.").
		Default(DefaultRestartsRetention.String()).Duration()
	collectors.Register("resources", true, func(d collectors.Deps) (collectors.Collector, error) {
		return New(d.Logger, d.Identity, Options{
			Metrics:              flagMetrics,
			AllCgroups:           *flagAllCgroups,
			HousekeepingInterval: *flagHousekeeping,
			DockerEvents:         *flagDockerEvents,
			Health:               d.Health,
			RestartsRetention:    *flagRetention,
		})
	})
}

// Options configure a Collector.
type Options struct {
	Metrics              container.MetricSet // nil means DefaultMetrics
	AllCgroups           bool                // export non-container cgroups too
	HousekeepingInterval time.Duration       // zero means 10s
	DockerEvents         bool                // watch Docker's start events
	Health               *collectors.Health  // may be nil
	RestartsRetention    time.Duration       // zero means DefaultRestartsRetention
	ReconcileInterval    time.Duration       // zero means DefaultReconcileInterval
}

// Collector is the resources collector.
type Collector struct {
	logger   *slog.Logger
	resolver *identity.Resolver
	manager  manager.Manager
	cadvisor *metrics.PrometheusCollector
	machine  *metrics.PrometheusMachineCollector
	all      bool
	restarts *restarts
	rescan   *reconciler // stands in for cAdvisor's rescan (reconcile.go)
	cancel   context.CancelFunc
	done     sync.WaitGroup
}

// managerMu serialises cAdvisor managers: its factory registry is global.
var managerMu sync.Mutex

// New starts an embedded cAdvisor manager and returns the collector. The
// Docker and containerd factories register when their runtime answers at
// start; otherwise their containers are served by the raw cgroup factory
// and named by the identity resolver once the runtime is back.
func New(logger *slog.Logger, resolver *identity.Resolver, opts Options) (*Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if resolver == nil {
		return nil, errors.New("resources: an identity resolver is required")
	}
	if opts.Metrics == nil {
		opts.Metrics = container.MetricSet{}
		if err := opts.Metrics.Set(DefaultMetrics); err != nil {
			return nil, err
		}
	}
	if opts.HousekeepingInterval <= 0 {
		opts.HousekeepingInterval = 10 * time.Second
	}
	// cAdvisor logs through klog; send it to our logger.
	klog.SetSlogLogger(logger.With("component", "cadvisor"))
	// cAdvisor stores the OOM notifier, factory and housekeeping defaults in
	// Go flags; its default of 1m between global housekeepings only matters
	// for cgroups the inotify watcher missed.
	_ = flag.Set("housekeeping_interval", opts.HousekeepingInterval.String())

	managerMu.Lock()
	defer managerMu.Unlock()
	if err := turnRescanOff(); err != nil {
		return nil, fmt.Errorf("resources: turning cAdvisor's rescan off: %w", err)
	}
	rec := newReconciler(logger.With("component", "reconciler"), opts.ReconcileInterval)
	// Only containers' cAdvisor handlers are needed, but the raw factory has
	// to accept the intermediate cgroups to find the containers below them;
	// the output is filtered instead (see containerProvider).
	allowDynamic := true
	m, err := manager.New(memory.New(2*time.Minute, nil), sysfs.NewRealSysFs(),
		manager.HousekeepingConfig{Interval: &opts.HousekeepingInterval, AllowDynamic: &allowDynamic},
		opts.Metrics, http.DefaultClient, []string{""}, nil, "", 0)
	if err != nil {
		return nil, fmt.Errorf("resources: cAdvisor manager: %w", err)
	}
	nextReconciler = rec
	err = m.Start()
	nextReconciler = nil
	if err != nil {
		container.ClearContainerHandlerFactories()
		return nil, fmt.Errorf("resources: starting cAdvisor: %w", err)
	}
	var ooms *oomKills
	if opts.Metrics == nil || opts.Metrics.Has(container.OOMMetrics) {
		if ooms, err = newOOMKills(); err != nil {
			// Without it OOM alerts are blind: say so.
			logger.Warn("OOM kills off: container_oom_events_total stays 0", "err", err)
			opts.Health.Degraded("resources.oom_events", err.Error())
		}
	}
	if info := container.DebugInfo(); len(info) > 0 {
		names := make([]string, 0, len(info))
		for n := range info {
			names = append(names, n)
		}
		logger.Info("cAdvisor container factories", "factories", names)
	}

	ctx, cancel := context.WithCancel(context.Background())
	c := &Collector{
		logger:   logger,
		resolver: resolver,
		manager:  m,
		all:      opts.AllCgroups,
		rescan:   rec,
		cancel:   cancel,
	}
	c.restarts = newRestarts(logger, resolver, opts.RestartsRetention)
	provider := containerProvider{Manager: m, all: opts.AllCgroups, ooms: ooms}
	c.cadvisor = metrics.NewPrometheusCollector(provider, c.containerLabels, opts.Metrics, clock.RealClock{},
		v2.RequestOptions{IdType: v2.TypeName, Count: 1, Recursive: true})
	c.machine = metrics.NewPrometheusMachineCollector(m, opts.Metrics)

	c.restarts.seed(ctx)
	c.done.Add(1)
	go func() { defer c.done.Done(); c.restarts.resolveLoop(ctx) }()
	if opts.DockerEvents {
		if cli := resolver.Docker(); cli != nil {
			c.done.Add(1)
			go func() { defer c.done.Done(); c.restarts.watchDocker(ctx, cli, opts.Health) }()
		}
	}
	return c, nil
}

// containerLabels are cAdvisor's `id` label plus the identity labels, the
// same for every cgroup so that each metric family has one label set.
func (c *Collector) containerLabels(ci *info.ContainerInfo) map[string]string {
	set := map[string]string{metrics.LabelID: ci.Name}
	var who identity.Identity
	if id, ok := identity.ContainerIDFromCgroupPath(ci.Name); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		who = c.resolver.Resolve(ctx, id)
		cancel()
		// The runtime was not reachable through the resolver, but cAdvisor's
		// own Docker or containerd handler knew the container.
		if who.Name == "" && who.Pod == "" && len(ci.Aliases) > 0 && ci.Aliases[0] != id {
			who.Name = ci.Aliases[0]
			who.Image = ci.Spec.Image
			who.Namespace = ci.Spec.Labels[identity.LabelPodNamespace]
			who.Pod = ci.Spec.Labels[identity.LabelPodName]
			who.Container = ci.Spec.Labels[identity.LabelContainerName]
		}
	}
	for i, v := range who.LabelValues() {
		set[identity.LabelNames[i]] = v
	}
	return set
}

// containerProvider hands cAdvisor's collector only containers' cgroups,
// unless all cgroups were asked for, with the kernel's OOM kill counts.
type containerProvider struct {
	manager.Manager
	all  bool
	ooms *oomKills // nil: cAdvisor's own count
}

func (p containerProvider) GetRequestedContainersInfo(name string, o v2.RequestOptions) (map[string]*info.ContainerInfo, error) {
	infos, err := p.Manager.GetRequestedContainersInfo(name, o)
	if !p.all {
		for n := range infos {
			if !ownContainerCgroup(n) {
				delete(infos, n)
			}
		}
	}
	if p.ooms != nil {
		p.ooms.apply(infos)
	}
	return infos, err
}

// ownContainerCgroup reports whether path is a container's own cgroup, not
// a host or pod cgroup and not a sub-cgroup a container made below its own.
func ownContainerCgroup(path string) bool {
	id, ok := identity.ContainerIDFromCgroupPath(path)
	if !ok {
		return false
	}
	parent, _ := identity.ContainerIDFromCgroupPath(parentPath(path))
	return parent != id
}

func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}

// Update sends cAdvisor's container and machine metrics and the restart
// counters.
func (c *Collector) Update(ch chan<- prometheus.Metric) error {
	c.cadvisor.Collect(ch)
	c.machine.Collect(ch)
	c.restarts.collect(ch)
	return nil
}

// CgroupCreated tells the collector that a cgroup was created in the
// unified hierarchy, at path relative to its root as the cgroup_mkdir
// tracepoint reports it, with the id the kernel gave it. The security
// collector calls it for every BPF cgroup_mkdir event; it counts container
// starts the moment they happen and never blocks the caller on a container
// runtime.
func (c *Collector) CgroupCreated(path string, id uint64) { c.restarts.cgroupCreated(path, id) }

// Close stops cAdvisor and the event watchers.
func (c *Collector) Close() error {
	c.cancel()
	c.done.Wait()
	managerMu.Lock()
	defer managerMu.Unlock()
	err := c.manager.Stop()
	container.ClearContainerHandlerFactories()
	return err
}
