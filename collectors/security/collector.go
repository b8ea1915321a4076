// Package security is the collector of breakwater's eBPF security counters:
// it loads the programs, keeps the kernel's view of which cgroups are
// containers current, turns ring-buffer events into escape events, and
// reads the in-kernel counters at scrape time.
package security

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/collectors"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/internal/logonce"
)

// Name is the collector's name in --collector.<name> and the collector label.
const Name = "security"

var (
	countHost = kingpin.Flag("collector.security.host",
		"Count processes outside containers too, with empty identity labels.").Default("false").Bool()
	expiry = kingpin.Flag("collector.security.expiry",
		"How long the series of an exited container stay before they are dropped.").Default("5m").Duration()
	maxContainersFlag = kingpin.Flag("collector.security.max-containers",
		"Most containers tracked at once; more are counted in breakwater_bpf_events_lost_total{reason=\"container_limit\"}.").Default("1024")
	maxContainers = maxContainersFlag.Int()
	deniedBudget  = kingpin.Flag("collector.security.denied-budget",
		"Distinct denied syscalls (syscall, reason, errno) counted per container; refused calls past it count under syscall=\"other\", errno=\"other\", so totals stay exact.").Default(strconv.Itoa(bpf.DefaultDeniedBudget)).Uint32()
	eventIntervalFlag = kingpin.Flag("collector.security.event-interval",
		"Shortest gap between two escape events (log lines, Alertmanager pushes) for the same container, syscall and result; repeats within it travel as a count with the next event, see breakwater_bpf_events_folded_total. 0 sends every attempt.").Default("10ms")
	eventInterval = eventIntervalFlag.Duration()
	profileDir    = kingpin.Flag("collector.security.profile-dir",
		"breakwater's state directory, kept across restarts: the syscall profile learned for each image (profiles.json) and the escape alerts not yet delivered to Alertmanager (alertpush.json). A file that cannot be read is kept beside it as FILE.corrupt. Empty keeps everything in memory only.").Default("/var/lib/breakwater").String()
	learningPeriod = kingpin.Flag("collector.security.learning-period",
		"How long containers of an image run while breakwater learns the image's syscalls; afterwards a syscall outside them counts in breakwater_syscalls_novel_total.").Default("1h").Duration()
	runtimeSockets = kingpin.Flag("collector.security.runtime-socket",
		"A container runtime API socket, by path on this host, whose connections count as runtime_socket escape attempts (repeatable; the well-known Docker, containerd, CRI-O and podman sockets and --runtime.* are always included).").Strings()
)

func init() {
	// Out-of-range values stop the exporter at parse time with the reason,
	// instead of serving without the collector; Config.validate is the one
	// place that knows the ranges.
	maxContainersFlag.Action(func(*kingpin.ParseContext) error { return (Config{MaxContainers: *maxContainers}).validate() })
	eventIntervalFlag.Action(func(*kingpin.ParseContext) error {
		return (Config{MaxContainers: 1, EventInterval: *eventInterval}).validate()
	})
	collectors.Register(Name, true, func(d collectors.Deps) (collectors.Collector, error) {
		return New(d, Config{CountHost: *countHost, Expiry: *expiry, MaxContainers: *maxContainers,
			DeniedBudget: *deniedBudget, EventInterval: *eventInterval, RuntimeSockets: *runtimeSockets,
			ProfileDir: *profileDir, LearningPeriod: *learningPeriod})
	})
}

// Config is the collector's settings.
type Config struct {
	CountHost     bool
	Expiry        time.Duration
	MaxContainers int
	// DeniedBudget bounds the distinct denied syscalls of one container.
	DeniedBudget uint32
	// DeniedEntries bounds the whole denied-syscall map; 0 sizes it from
	// MaxContainers and DeniedBudget.
	DeniedEntries uint32
	// EventInterval folds repeated attempts in the kernel (bpf.Options).
	EventInterval time.Duration
	// ResyncInterval is how often the cgroup tree is rescanned to repair
	// what lost ring-buffer records missed, and expired series dropped.
	ResyncInterval time.Duration
	// RuntimeSockets are runtime API sockets beyond the well-known ones.
	RuntimeSockets []string
	// RuntimePorts are TCP ports of runtime APIs; nil means 2375 and 2376.
	RuntimePorts []uint16
	// LookalikeGrace is how long a container-looking cgroup no runtime
	// knows is kept before it is evicted.
	LookalikeGrace time.Duration
	// Without names optional BPF programs not to load (tests of the fallbacks).
	Without []string
	// ProfileDir keeps the learned syscall profiles; "" keeps them in memory.
	ProfileDir string
	// LearningPeriod is how long an image's containers run while its
	// profile is learned; 0 means 1h.
	LearningPeriod time.Duration
}

// ProfileDir is the --collector.security.profile-dir flag, for `breakwater profile`.
func ProfileDir() string { return *profileDir }

// validate checks the settings a user gives, with the flag's name in the
// error.
func (cfg Config) validate() error {
	if cfg.MaxContainers <= 0 {
		return fmt.Errorf("--collector.security.max-containers must be positive, got %d", cfg.MaxContainers)
	}
	if cfg.EventInterval < 0 {
		return fmt.Errorf("--collector.security.event-interval must not be negative, got %v", cfg.EventInterval)
	}
	return nil
}

// CgroupListener learns of every new container cgroup the moment the kernel
// creates it, with the cgroup id the kernel gave it (for restart counting).
type CgroupListener interface {
	CgroupCreated(path string, id uint64)
}

// Collector is the security collector.
type Collector struct {
	logger     *slog.Logger
	cfg        Config
	probe      *bpf.Probe
	loadErr    error
	root       string
	containers *containerTable
	resolver   *identity.Resolver
	sink       escape.Sink
	health     *collectors.Health
	bootTime   time.Time // wall clock of boot, to date kernel event times

	profiles  *profiles
	lastLearn time.Time

	logLimit logLimiter // one log line per container, technique and result per window
	// strayBefore are kernel-tracked cgroups the last resync found neither
	// in the hierarchy nor in the table (owned by the resync's goroutine).
	strayBefore map[uint64]bool
	// lookalikes is the look-alike cgroup warning, logged once per path.
	lookalikes *logonce.Repeats

	listenersMu sync.Mutex
	listeners   []CgroupListener

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New loads and attaches the programs. A kernel that cannot run them leaves
// a collector that reports itself failed and detached on every scrape, so
// the exporter keeps serving everything else and the alert on a blind
// exporter fires.
func New(d collectors.Deps, cfg Config) (*Collector, error) {
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 15 * time.Second
	}
	if cfg.LookalikeGrace == 0 {
		cfg.LookalikeGrace = 10 * time.Second
	}
	if cfg.RuntimePorts == nil {
		cfg.RuntimePorts = []uint16{2375, 2376}
	}
	if cfg.LearningPeriod == 0 {
		cfg.LearningPeriod = time.Hour
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Collector{logger: d.Logger, cfg: cfg, sink: d.Escapes, health: d.Health, resolver: d.Identity,
		lookalikes: logonce.New(d.Logger, "cgroup looks like a container that no runtime knows; not counting it", 10*time.Minute),
		containers: newContainerTable(cfg.MaxContainers, cfg.Expiry, d.Identity)}
	c.bootTime = bootTime()
	state := d.State
	if state == nil {
		state = statefile.New(cfg.ProfileDir)
	}
	c.profiles = newProfiles(state, cfg.LearningPeriod)
	if err := c.profiles.loadErr; err != nil {
		d.Health.Degraded("profiles", err.Error())
		d.Logger.Error("syscall profiles not restored; learning again", "err", err)
	}
	root, err := identity.UnifiedRoot()
	if err != nil {
		c.fail(fmt.Errorf("no cgroup v2 hierarchy: %w", err))
		return c, nil
	}
	c.root = root
	descs, err := Descs()
	if err != nil {
		return nil, err
	}
	probe, err := bpf.Load(bpf.Options{CountHost: cfg.CountHost, MaxContainers: uint32(cfg.MaxContainers),
		DeniedBudget: cfg.DeniedBudget, DeniedEntries: cfg.DeniedEntries, Descs: descs,
		EventInterval: cfg.EventInterval, RuntimePorts: cfg.RuntimePorts, Without: cfg.Without})
	if err != nil {
		c.fail(err)
		return c, nil
	}
	c.probe = probe
	for _, h := range bpf.Hooks {
		err := probe.AttachErrors()[h.Program]
		switch {
		case err == nil:
		case h.Optional():
			d.Health.Degraded("bpf."+h.Program, err.Error())
			d.Logger.Warn("optional BPF hook not attached", "program", h.Program, "fallback", h.Fallback, "err", err)
		default:
			d.Health.Degraded("bpf."+h.Program, err.Error())
			d.Logger.Error("BPF hook not attached; its counters stay at zero", "program", h.Program, "err", err)
		}
	}
	if gap := probe.NoauditGap(); gap != "" && !probe.CapabilitiesInferred() {
		why := gap + ": the kernel's own unaudited capability checks count as the container's"
		d.Health.Degraded("bpf.kallsyms", why)
		d.Logger.Warn(why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.resync(ctx)
	for _, r := range probe.Readers() {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.readEvents(ctx, r) }()
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.housekeep(ctx) }()
	return c, nil
}

func (c *Collector) fail(err error) {
	c.loadErr = err
	c.health.Degraded(Name, err.Error())
	c.logger.Error("security collector runs without BPF: no security counters", "err", err)
}

// AddListener registers a listener of new container cgroups.
func (c *Collector) AddListener(l CgroupListener) {
	c.listenersMu.Lock()
	defer c.listenersMu.Unlock()
	c.listeners = append(c.listeners, l)
}

// Close detaches every program.
func (c *Collector) Close() error {
	if c.cancel != nil {
		c.cancel()
	}
	var err error
	if c.probe != nil {
		// Unblock the readers and let every goroutine that uses the maps
		// finish before the maps go.
		stopErr := c.probe.StopReading()
		c.wg.Wait()
		c.logPendingRepeats()
		err = errors.Join(stopErr, c.probe.Close())
	}
	if c.profiles != nil {
		if perr := c.profiles.save(time.Now(), 0); perr != nil {
			c.logger.Error("saving syscall profiles", "err", perr)
		}
	}
	// What the log folded since its last line is said once more, so the
	// log accounts for every event it received.
	for key, n := range c.logLimit.drain() {
		c.logger.Warn("escape attempts not logged one by one", "key", key, "similar_since_last_log", n)
	}
	return err
}

func (c *Collector) housekeep(ctx context.Context) {
	tick := time.NewTicker(c.cfg.ResyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.resync(ctx)
		c.learnProfiles(ctx, time.Now())
		c.expire()
		c.logLimit.prune(time.Now())
	}
}

func (c *Collector) expire() {
	for _, id := range c.containers.expire(time.Now(), c.probe.HasLiveTasks) {
		if err := c.probe.Forget(id); err != nil {
			c.logger.Error("dropping counters of expired container", "cgroup_id", id, "err", err)
		}
	}
}
