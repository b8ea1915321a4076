// Package security is the collector of breakwater's eBPF security counters:
// it loads the programs, keeps the kernel's set of tracked container cgroups
// current, turns ring-buffer events into escape events, and reads the
// in-kernel counters at scrape time.
package security

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/collectors"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/syscalls"
)

// Name is the collector's name in --collector.<name> and the collector label.
const Name = "security"

var (
	countHost = kingpin.Flag("collector.security.host",
		"Count processes outside containers too, with empty identity labels.").Default("false").Bool()
	expiry = kingpin.Flag("collector.security.expiry",
		"How long the series of an exited container stay before they are dropped.").Default("5m").Duration()
	maxContainersFlag = kingpin.Flag("collector.security.max-containers",
		"Most container cgroups tracked at once; more are counted in breakwater_bpf_events_lost_total{reason=\"container_limit\"}.").Default("1024")
	maxContainers  = maxContainersFlag.Int()
	counterEntries = kingpin.Flag("collector.security.counter-entries",
		"Size of the in-kernel counter map (one entry per container, syscall and outcome).").Default("65536").Uint32()
	eventIntervalFlag = kingpin.Flag("collector.security.event-interval",
		"Shortest gap between two escape events (log lines, Alertmanager pushes) for the same container, syscall and result; repeats within it travel as a count with the next event, see breakwater_bpf_events_folded_total. 0 sends every attempt.").Default("10ms")
	eventInterval = eventIntervalFlag.Duration()
)

func init() {
	// Out-of-range values stop the exporter at parse time with the reason,
	// instead of serving without the collector.
	maxContainersFlag.Action(func(*kingpin.ParseContext) error {
		if *maxContainers <= 0 {
			return fmt.Errorf("--collector.security.max-containers must be positive, got %d", *maxContainers)
		}
		return nil
	})
	eventIntervalFlag.Action(func(*kingpin.ParseContext) error {
		if *eventInterval < 0 {
			return fmt.Errorf("--collector.security.event-interval must not be negative, got %v", *eventInterval)
		}
		return nil
	})
	collectors.Register(Name, true, func(d collectors.Deps) (collectors.Collector, error) {
		return New(d, Config{CountHost: *countHost, Expiry: *expiry, MaxContainers: *maxContainers,
			CounterEntries: *counterEntries, EventInterval: *eventInterval})
	})
}

// Config is the collector's settings.
type Config struct {
	CountHost      bool
	Expiry         time.Duration
	MaxContainers  int
	CounterEntries uint32
	// EventInterval folds repeated attempts in the kernel (bpf.Options).
	EventInterval time.Duration
	// ResyncInterval is how often the cgroup tree is rescanned to repair
	// what lost ring-buffer records missed, and expired series dropped.
	ResyncInterval time.Duration
}

// CgroupListener learns of every new container cgroup the moment the kernel
// creates it (for restart counting).
type CgroupListener interface {
	CgroupCreated(path string)
}

// Collector is the security collector.
type Collector struct {
	logger   *slog.Logger
	cfg      Config
	probe    *bpf.Probe
	loadErr  error
	root     string
	cgroups  *cgroupTable
	sink     escape.Sink
	health   *collectors.Health
	bootTime time.Time // wall clock of boot, to date kernel event times

	logLimit logLimiter // one log line per container, technique and result per window
	// strayBefore are kernel-tracked cgroups the last resync found neither
	// in the hierarchy nor in the table (owned by the resync's goroutine).
	strayBefore map[uint64]bool

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
	if cfg.MaxContainers <= 0 {
		return nil, fmt.Errorf("--collector.security.max-containers must be positive, got %d", cfg.MaxContainers)
	}
	c := &Collector{logger: d.Logger, cfg: cfg, sink: d.Escapes, health: d.Health,
		cgroups: newCgroupTable(cfg.MaxContainers, cfg.Expiry, d.Identity)}
	c.bootTime = bootTime()
	root, err := identity.UnifiedRoot()
	if err != nil {
		c.fail(fmt.Errorf("no cgroup v2 hierarchy: %w", err))
		return c, nil
	}
	c.root = root
	// The cgroup maps hold the containers plus their sub-cgroups.
	probe, err := bpf.Load(bpf.Options{CountHost: cfg.CountHost, MaxContainers: uint32(cfg.MaxContainers) * 2,
		CounterEntries: cfg.CounterEntries, Classes: Classes(), EventInterval: cfg.EventInterval})
	if err != nil {
		c.fail(err)
		return c, nil
	}
	c.probe = probe
	for prog, err := range probe.AttachErrors() {
		d.Health.Degraded("bpf."+prog, err.Error())
		d.Logger.Error("BPF hook not attached; its counters stay at zero", "program", prog, "err", err)
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
	// What the log folded since its last line is said once more, so the
	// log accounts for every event it received.
	for key, n := range c.logLimit.drain() {
		c.logger.Warn("escape attempts not logged one by one", "key", key, "similar_since_last_log", n)
	}
	return err
}

// track starts counting a container cgroup found by event or by scan.
func (c *Collector) track(id uint64, path string, fromEvent bool) {
	cid, ok := identity.ContainerIDFromCgroupPath(path)
	if !ok {
		return
	}
	if !c.cgroups.add(id, path, cid) {
		c.logger.Warn("container limit reached; not counting this container", "container_id", cid, "max", c.cfg.MaxContainers)
		return
	}
	state := bpf.StateActive
	if fromEvent {
		state = bpf.StatePending // the runtime sets it up first; counting starts at its first exec
	}
	if c.probe.State(id) == 0 {
		if err := c.probe.Track(id, state); err != nil {
			c.logger.Error("tracking cgroup in BPF map", "path", path, "err", err)
			return
		}
	}
	if fromEvent && alreadyStarted(c.root, path) {
		_ = c.probe.Activate(id)
	}
}

// resync rescans the unified hierarchy: containers whose mkdir record was
// lost are tracked, cgroups whose rmdir was lost are marked removed.
func (c *Collector) resync(ctx context.Context) {
	found, err := identity.ContainerCgroups(c.root)
	if err != nil {
		c.logger.Error("scanning cgroups", "root", c.root, "err", err)
		return
	}
	present := map[uint64]bool{}
	for _, cg := range found {
		present[cg.ID] = true
		c.track(cg.ID, cg.Path, false)
		_, _ = c.cgroups.identity(ctx, cg.ID) // warm the identity while the container exists
	}
	now := time.Now()
	live := c.cgroups.liveIDs()
	for id := range live {
		if !present[id] {
			c.cgroups.remove(id, now)
			_ = c.probe.Untrack(id)
		}
	}
	c.sweepStray(present, live)
}

// sweepStray drops kernel-tracked cgroups that are neither in the hierarchy
// nor known to user space, as when the cgroup's records were lost. An entry
// goes only when two scans in a row missed it: one the kernel added at a
// mkdir after this scan, whose record is still on its way, stays.
func (c *Collector) sweepStray(present map[uint64]bool, live map[uint64]string) {
	ids, err := c.probe.TrackedIDs()
	if err != nil {
		c.logger.Error("listing tracked cgroups", "err", err)
		return
	}
	stray := map[uint64]bool{}
	for _, id := range ids {
		if _, known := live[id]; known || present[id] {
			continue
		}
		if c.strayBefore[id] {
			_ = c.probe.Untrack(id)
			continue
		}
		stray[id] = true
	}
	c.strayBefore = stray
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
		c.expire()
		c.logLimit.prune(time.Now())
	}
}

func (c *Collector) expire() {
	for _, id := range c.cgroups.expire(time.Now()) {
		if err := c.probe.Forget(id); err != nil {
			c.logger.Error("dropping counters of expired cgroup", "cgroup_id", id, "err", err)
		}
	}
}

func (c *Collector) readEvents(ctx context.Context, r *ringbuf.Reader) {
	var rec ringbuf.Record
	for {
		if err := r.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || ctx.Err() != nil {
				return
			}
			c.logger.Error("reading ring buffer", "err", err)
			continue
		}
		c.handle(ctx, rec.RawSample)
	}
}

func (c *Collector) handle(ctx context.Context, raw []byte) {
	if len(raw) < 4 {
		return
	}
	switch bpf.EventType(binary.LittleEndian.Uint32(raw)) {
	case bpf.EventMkdir, bpf.EventRmdir:
		var e bpf.CgroupEvent
		if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, &e); err != nil {
			return
		}
		path := cString(e.Path[:])
		if bpf.EventType(e.Type) == bpf.EventRmdir {
			c.cgroups.remove(e.CgroupId, time.Now())
			// The kernel may have tracked it at mkdir even if user space
			// never knew it (a lost mkdir record).
			_ = c.probe.Untrack(e.CgroupId)
			return
		}
		if _, ok := identity.ContainerIDFromCgroupPath(path); !ok {
			// The kernel's test is looser (64 hex at the end); what user
			// space does not call a container is not counted.
			_ = c.probe.Untrack(e.CgroupId)
			return
		}
		c.track(e.CgroupId, path, true)
		c.listenersMu.Lock()
		ls := append([]CgroupListener(nil), c.listeners...)
		c.listenersMu.Unlock()
		for _, l := range ls {
			l.CgroupCreated(path)
		}
		go c.cgroups.identity(ctx, e.CgroupId) // capture the name while the container exists
	case bpf.EventSyscall:
		var e bpf.SyscallEvent
		if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, &e); err != nil {
			return
		}
		c.escapeEvent(ctx, &e)
	}
}

// escapeAttempt names an outcome of a syscall (number, sub-class, errno) as
// an escape attempt: the syscall, the technique and the result. ok is false
// when the outcome is no escape technique.
func escapeAttempt(nr, sub, errno uint16) (syscall, technique, result string, ok bool) {
	syscall = syscalls.Name(uint32(nr))
	o, found := derive(syscall, sub)
	if !found || o.technique == "" {
		return "", "", "", false
	}
	result = escape.Blocked
	if errno == 0 {
		result = escape.Allowed
	}
	return syscall, o.technique, result, true
}

func (c *Collector) escapeEvent(ctx context.Context, e *bpf.SyscallEvent) {
	name, technique, result, ok := escapeAttempt(e.Nr, e.Sub, e.Err)
	if !ok {
		return
	}
	ident, _ := c.cgroups.identity(ctx, e.CgroupId)
	ev := escape.Event{
		Time:      c.bootTime.Add(time.Duration(e.KtimeNs)),
		Identity:  ident,
		Technique: technique,
		Result:    result,
		Syscall:   name,
		Comm:      cString(e.Comm[:]),
		PID:       e.Tgid,
		Detail:    cString(e.Detail[:]),
		Repeats:   e.Repeats,
	}
	if e.Err != 0 {
		ev.Errno = errnoName(e.Err)
	}
	if suppressed, ok := c.logLimit.allow(logKey(ident, ev.Technique, ev.Result), 1+ev.Repeats, ev.Time); ok {
		c.logger.Warn("escape attempt", "technique", ev.Technique, "result", ev.Result, "syscall", ev.Syscall,
			"errno", ev.Errno, "container_id", ident.ContainerID, "name", ident.Name, "image", ident.Image,
			"namespace", ident.Namespace, "pod", ident.Pod, "comm", ev.Comm, "pid", ev.PID, "detail", ev.Detail,
			"similar_since_last_log", suppressed)
	}
	if c.sink != nil {
		c.sink.Push(ev)
	}
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, ch := range b {
		if ch == 0 {
			break
		}
		out = append(out, byte(ch))
	}
	return strings.ToValidUTF8(string(out), "?")
}

// logKey is what the log folds escape attempts by.
func logKey(ident identity.Identity, technique, result string) string {
	return ident.ContainerID + "/" + technique + "/" + result
}

// logPendingRepeats adds the attempts the kernel folded after its last event
// of each kind to what the log says at shutdown.
func (c *Collector) logPendingRepeats() {
	pending, err := c.probe.PendingRepeats()
	if err != nil {
		c.logger.Error("reading folded escape attempts", "err", err)
		return
	}
	for key, n := range pending {
		if _, technique, result, ok := escapeAttempt(key.Nr, key.Sub, key.Err); ok {
			c.logLimit.hold(logKey(c.cgroups.known(key.CgroupId), technique, result), n)
		}
	}
}

// logLimiter lets one line per key through per window and counts the rest,
// so that a storm of attempts is a handful of log lines, not gigabytes. The
// counters stay exact; only the log is folded.
type logLimiter struct {
	mu   sync.Mutex
	keys map[string]*logWindow
}

type logWindow struct {
	start      time.Time
	suppressed uint64
}

const logWindowLen = 10 * time.Second

// allow reports whether to log an event standing for weight attempts now,
// and how many similar attempts came before it since the last line.
func (l *logLimiter) allow(key string, weight uint64, now time.Time) (suppressed uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, seen := l.window(key)
	if seen && now.Sub(w.start) < logWindowLen {
		w.suppressed += weight
		return 0, false
	}
	suppressed, w.start, w.suppressed = w.suppressed+weight-1, now, 0
	return suppressed, true
}

// hold counts n attempts as held back, for the next line or drain.
func (l *logLimiter) hold(key string, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, _ := l.window(key)
	w.suppressed += n
}

// window returns key's window, created empty if it had none. Callers hold mu.
func (l *logLimiter) window(key string) (w *logWindow, existed bool) {
	if l.keys == nil {
		l.keys = map[string]*logWindow{}
	}
	if w, ok := l.keys[key]; ok {
		return w, true
	}
	w = &logWindow{}
	l.keys[key] = w
	return w, false
}

// drain returns and forgets the attempts held back, by key.
func (l *logLimiter) drain() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]uint64{}
	for k, w := range l.keys {
		if w.suppressed > 0 {
			out[k] = w.suppressed
		}
	}
	l.keys = nil
	return out
}

// prune forgets keys whose window closed long ago.
func (l *logLimiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, w := range l.keys {
		if now.Sub(w.start) > 6*logWindowLen {
			delete(l.keys, k)
		}
	}
}
