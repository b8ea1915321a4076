package resources

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater/breakwater/collectors"
	"github.com/breakwater/breakwater/exporter/identity"
)

var restartsDesc = prometheus.NewDesc(
	prometheus.BuildFQName(collectors.Namespace, "container", "restarts_total"),
	"Starts of a container identity after its first (Docker name, or Kubernetes namespace/pod/container), seen from cgroup creation and Docker's start events; exported while a container of it runs or once it restarted.",
	[]string{"name", "image", "namespace", "pod", "container"}, nil)

const (
	// pendingMax bounds the containers kept while no runtime can name them.
	pendingMax = 10000
	// pendingMaxAge drops starts of containers no runtime ever named.
	pendingMaxAge = 10 * time.Minute
	// DefaultRestartsRetention is how long the counter of an identity no
	// container holds is kept: longer than ContainerRestartingOften's 10m
	// window, so a crash loop with long back-off still counts as one identity.
	DefaultRestartsRetention = 15 * time.Minute
	// inosPerContainer is how many recent cgroup ids of one container id
	// are remembered to tell a cgroup found at start from its BPF report.
	inosPerContainer = 4
)

// restartKey is who restarts: Docker restarts keep the container (and its
// name), Kubernetes restarts make a new container, and a new runtime name
// under some runtimes, in the same namespace/pod/container.
type restartKey struct{ name, namespace, pod, container string }

func keyOf(who identity.Identity) restartKey {
	if who.Pod != "" || who.Namespace != "" {
		return restartKey{namespace: who.Namespace, pod: who.Pod, container: who.Container}
	}
	return restartKey{name: who.Name}
}

// restartSeries counts the starts of one identity. Starts are counted in
// whatever order they get their names (a runtime that cannot name one
// must not hold back the others), so the value is derived, not stepped:
// every start is a restart but the identity's first, and that first is
// either a container already running when breakwater started (seeded) or
// the earliest start seen.
type restartSeries struct {
	labels   []string // the identity at the first start named
	starts   float64  // starts seen from cgroup creation
	seeded   bool     // a container of it ran before breakwater started
	lastSeen time.Time
}

// restarts is the counter's value: monotonic, whatever the naming order
// (a seeded start named late adds the one restart it was owed).
func (s *restartSeries) restarts() float64 {
	if s.seeded {
		return s.starts
	}
	return max(s.starts-1, 0)
}

// source is who reports a start. Each reports every start of a container
// once; neither knows which report of the other is the same start.
type source int

const (
	fromCgroup source = iota // BPF cgroup_mkdir, or the cgroup found at seed
	fromDocker               // Docker's start event
)

// start is one report of a container start.
type start struct {
	id   string
	ino  uint64             // unified cgroup id (cgroup reports); 0 if unknown
	who  *identity.Identity // nil: ask the resolver
	path string             // cgroup path if known
}

// containerStarts is what the sources said of one container id.
//
// The sources are not matched report by report: a Docker event is often
// read after a one-shot container's cgroup is gone, so it cannot say which
// cgroup it was about, and under load it can be read seconds after the
// cgroup report of the same start. Both see every start of the container
// in turn, so the container started as many times as the source that saw
// more starts says: however late or unmatched a report, one start is
// counted once, and a start one source missed is still counted.
type containerStarts struct {
	inos     []uint64 // recent cgroup ids cgroup creation reported
	cgroup   int      // starts cgroup creation reported (a seeded run not included)
	docker   int      // starts Docker's events reported
	credited int      // of max(cgroup, docker), the starts added to the identity's series
	seeded   bool     // it ran when breakwater started: that run is no start
	seedDone bool     // the seeded run was credited to the identity
	who      identity.Identity
	named    bool
	path     string    // last cgroup path, "" if never known
	last     time.Time // last report
	pending  time.Time // when it was queued for a name; zero if not queued
}

func (c *containerStarts) starts() int { return max(c.cgroup, c.docker) }

// restarts turns start reports from BPF cgroup creation and Docker events
// into breakwater_container_restarts_total, counting each start once.
type restarts struct {
	logger   *slog.Logger
	resolver *identity.Resolver
	root     string // unified cgroup root, "" if none
	now      func() time.Time

	mu         sync.Mutex
	containers map[string]*containerStarts // container id -> its starts
	series     map[restartKey]*restartSeries
	pending    []string      // container ids with starts no runtime named yet, oldest first
	retention  time.Duration // drop identities without a running container this long
}

func newRestarts(logger *slog.Logger, resolver *identity.Resolver, retention time.Duration) *restarts {
	if retention <= 0 {
		retention = DefaultRestartsRetention
	}
	root, err := identity.UnifiedRoot()
	if err != nil {
		logger.Warn("restart counting cannot tell running containers from gone ones", "err", err)
	}
	return &restarts{
		logger: logger, resolver: resolver, root: root, now: time.Now, retention: retention,
		containers: map[string]*containerStarts{}, series: map[restartKey]*restartSeries{},
	}
}

// seed records the containers that run now as started: their next start
// is a restart.
func (r *restarts) seed(ctx context.Context) {
	if r.root == "" {
		return
	}
	cgs, err := identity.ContainerCgroups(r.root)
	if err != nil {
		r.logger.Warn("listing running containers for restart counting", "err", err)
		return
	}
	for _, cg := range cgs {
		if !ownContainerCgroup(cg.Path) {
			continue
		}
		id, _ := identity.ContainerIDFromCgroupPath(cg.Path)
		r.report(ctx, fromCgroup, start{id: id, ino: cg.ID, path: cg.Path}, true)
	}
}

// cgroupCreated is a cgroup the kernel made, with the id it gave it.
func (r *restarts) cgroupCreated(path string, ino uint64) {
	if !ownContainerCgroup(path) {
		return
	}
	id, _ := identity.ContainerIDFromCgroupPath(path)
	// The caller is the BPF event loop: name the container without
	// blocking it.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.report(ctx, fromCgroup, start{id: id, ino: ino, path: path}, false)
	}()
}

// report records one source's report of a start (first: a run found when
// breakwater started) and credits the identity with the starts it adds.
func (r *restarts) report(ctx context.Context, src source, s start, first bool) {
	r.logger.Debug("container start reported", "container_id", s.id, "cgroup_id", s.ino, "first", first, "from_docker", src == fromDocker)
	now := r.now()
	r.mu.Lock()
	c := r.containers[s.id]
	if c == nil {
		c = &containerStarts{}
		r.containers[s.id] = c
	}
	c.last = now
	if s.path != "" {
		c.path = s.path
	}
	if s.who != nil && named(*s.who) && !c.named {
		c.who, c.named = *s.who, true
	}
	switch {
	case src == fromDocker:
		c.docker++
	case s.ino != 0 && slices.Contains(c.inos, s.ino):
		// The cgroup found at seed, reported by BPF too.
	default:
		if s.ino != 0 {
			if len(c.inos) >= inosPerContainer {
				c.inos = c.inos[1:]
			}
			c.inos = append(c.inos, s.ino)
		}
		if first {
			c.seeded = true
		} else {
			c.cgroup++
		}
	}
	ask := !c.named
	r.mu.Unlock()

	var who identity.Identity
	if ask {
		who = r.resolver.Resolve(ctx, s.id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ask && named(who) && !c.named {
		c.who, c.named = who, true
	}
	if !c.named {
		r.queueLocked(s.id, c, now)
		return
	}
	r.creditLocked(c, now)
}

func named(who identity.Identity) bool { return who.Name != "" || who.Pod != "" }

// creditLocked adds a named container's starts not yet counted to its
// identity's series.
func (r *restarts) creditLocked(c *containerStarts, now time.Time) {
	n := c.starts()
	if c.who.Sandbox {
		c.credited = n
		return // a pod's pause container: kubelet counts its containers' restarts, not the pod's
	}
	k := keyOf(c.who)
	s, ok := r.series[k]
	if !ok {
		s = &restartSeries{labels: []string{c.who.Name, c.who.Image, c.who.Namespace, c.who.Pod, c.who.Container}}
		r.series[k] = s
	}
	if c.seeded && !c.seedDone {
		s.seeded, c.seedDone = true, true
	}
	s.starts += float64(n - c.credited)
	c.credited = n
	s.lastSeen = now
}

func (r *restarts) queueLocked(id string, c *containerStarts, now time.Time) {
	if !c.pending.IsZero() {
		return
	}
	if len(r.pending) >= pendingMax {
		r.logger.Warn("too many container starts without a name; dropping the oldest", "container_id", r.pending[0])
		if old := r.containers[r.pending[0]]; old != nil {
			old.pending = time.Time{}
		}
		r.pending = r.pending[1:]
	}
	c.pending = now
	r.pending = append(r.pending, id)
}

// drainLocked names the pending starts a runtime can name now and drops
// those none could name for pendingMaxAge. Resolve answers misses from its
// cache for a few seconds, so this is cheap while a runtime is down.
func (r *restarts) drainLocked(ctx context.Context) {
	now := r.now()
	kept := r.pending[:0]
	for _, id := range r.pending {
		c := r.containers[id]
		if c == nil || c.pending.IsZero() {
			continue
		}
		if !c.named {
			if who := r.resolver.Resolve(ctx, id); named(who) {
				c.who, c.named = who, true
			}
		}
		switch {
		case c.named:
			c.pending = time.Time{}
			r.creditLocked(c, now)
		case now.Sub(c.pending) < pendingMaxAge:
			kept = append(kept, id)
		default:
			c.pending = time.Time{}
			r.logger.Debug("dropping a start no runtime could name", "container_id", id)
		}
	}
	clear(r.pending[len(kept):])
	r.pending = kept
}

// resolveLoop retries pending starts and expires old series.
func (r *restarts) resolveLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		r.drainLocked(ctx)
		r.expireLocked()
		r.mu.Unlock()
	}
}

// runningLocked reports whether the container's cgroup exists; without a
// unified hierarchy nothing can tell, and every container counts as running.
func (r *restarts) runningLocked(c *containerStarts) bool {
	if r.root == "" {
		return true
	}
	if c.path == "" {
		return false
	}
	_, err := identity.CgroupID(r.root, c.path)
	return err == nil
}

// expireLocked drops identities that have not held a running container for
// the retention, and the state of containers gone as long.
func (r *restarts) expireLocked() {
	now := r.now()
	for id, c := range r.containers {
		if r.runningLocked(c) {
			if s, ok := r.series[keyOf(c.who)]; ok && c.named {
				s.lastSeen = now
			}
			continue
		}
		if now.Sub(c.last) > r.retention && c.pending.IsZero() {
			delete(r.containers, id)
		}
	}
	for k, s := range r.series {
		if now.Sub(s.lastSeen) > r.retention {
			delete(r.series, k)
		}
	}
}

// collect exports the identities with restarts, and those a running
// container holds: an identity whose containers are gone without a restart
// has nothing to say, and is kept in memory only, for its next start.
func (r *restarts) collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	r.drainLocked(ctx)
	cancel()
	held := map[restartKey]bool{}
	for _, c := range r.containers {
		if !c.named || c.who.Sandbox {
			continue
		}
		k := keyOf(c.who)
		if s, ok := r.series[k]; ok && !held[k] && s.restarts() == 0 && r.runningLocked(c) {
			held[k] = true
		}
	}
	out := make([]prometheus.Metric, 0, len(r.series))
	for k, s := range r.series {
		if v := s.restarts(); v > 0 || held[k] {
			out = append(out, prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, v, s.labels...))
		}
	}
	r.mu.Unlock()
	for _, m := range out {
		ch <- m
	}
}

// watchDocker counts starts from Docker's event stream, reconnecting when
// the engine restarts. Without BPF it is the only source of starts; with
// BPF, both report each start (see containerStarts).
func (r *restarts) watchDocker(ctx context.Context, cli *dockerclient.Client, health *collectors.Health) {
	since := r.now()
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		msgs, errs := cli.Events(ctx, events.ListOptions{
			Since:   fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
			Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("event", string(events.ActionStart))),
		})
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				health.Degraded("docker-events", "")
				backoff = 500 * time.Millisecond
				// Replays after a reconnect start just after the last event.
				since = time.Unix(0, m.TimeNano+1)
				r.dockerStart(ctx, m)
			case err := <-errs:
				if ctx.Err() != nil {
					return
				}
				health.Degraded("docker-events", "Docker event stream: "+err.Error())
				r.logger.Debug("Docker event stream ended; reconnecting", "err", err)
				break stream
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (r *restarts) dockerStart(ctx context.Context, m events.Message) {
	id := m.Actor.ID
	a := m.Actor.Attributes
	who := identity.Identity{
		ContainerID: id,
		Name:        a["name"],
		Image:       a["image"],
		Namespace:   a[identity.LabelPodNamespace],
		Pod:         a[identity.LabelPodName],
		Container:   a[identity.LabelContainerName],
		Sandbox:     a[identity.LabelDockerType] == "podsandbox",
	}
	s := start{id: id}
	if named(who) {
		s.who = &who
	}
	// Where its cgroup is, to tell whether it still runs; a one-shot
	// container's may be gone already.
	if r.root != "" {
		r.mu.Lock()
		var known string
		if c := r.containers[id]; c != nil {
			known = c.path
		}
		r.mu.Unlock()
		for _, p := range []string{known, "/docker/" + id, "/system.slice/docker-" + id + ".scope"} {
			if p == "" {
				continue
			}
			if _, err := identity.CgroupID(r.root, p); err == nil {
				s.path = p
				break
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r.report(cctx, fromDocker, s, false)
}
