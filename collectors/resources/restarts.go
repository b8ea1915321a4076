package resources

import (
	"context"
	"fmt"
	"log/slog"
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
	"Starts of a container identity after its first (Docker name, or Kubernetes namespace/pod/container), seen from cgroup creation.",
	[]string{"name", "image", "namespace", "pod", "container"}, nil)

const (
	// sameStartWindow merges reports of one start that carry no cgroup id
	// (the cgroup was gone before it could be read). Docker waits at least
	// 100ms before a restart, so two real starts are never this close.
	sameStartWindow = 100 * time.Millisecond
	// pendingMax bounds starts kept while no runtime can name them.
	pendingMax = 10000
	// pendingMaxAge drops starts of containers no runtime ever named.
	pendingMaxAge = 10 * time.Minute
	// DefaultRestartsRetention is how long the counter of an identity no
	// container holds is kept: longer than ContainerRestartingOften's 10m
	// window, so a crash loop with long back-off still counts as one identity.
	DefaultRestartsRetention = 15 * time.Minute
	// inosPerContainer is how many recent cgroup ids of one container id
	// are remembered to merge the BPF and Docker reports of one start.
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

type pendingStart struct {
	id    string
	first bool // the container ran before we started: not a restart
	at    time.Time
}

// start is one report of a container start.
type start struct {
	id   string
	ino  uint64             // unified cgroup id; 0 if unknown
	who  *identity.Identity // nil: ask the resolver
	path string             // cgroup path if known
}

// restarts turns start reports from BPF cgroup creation and Docker events
// into breakwater_container_restarts_total, counting each start once.
type restarts struct {
	logger   *slog.Logger
	resolver *identity.Resolver
	root     string // unified cgroup root, "" if none
	now      func() time.Time

	mu        sync.Mutex
	inos      map[string][]uint64  // container id -> recent cgroup ids
	lastStart map[string]time.Time // container id -> last accepted report
	paths     map[string]string    // container id -> last cgroup path
	series    map[restartKey]*restartSeries
	pending   []pendingStart
	retention time.Duration // drop identities without a running container this long
}

func newRestarts(logger *slog.Logger, resolver *identity.Resolver, retention time.Duration) *restarts {
	if retention <= 0 {
		retention = DefaultRestartsRetention
	}
	root, err := identity.UnifiedRoot()
	if err != nil {
		logger.Warn("restart counting cannot tell starts apart by cgroup id", "err", err)
	}
	return &restarts{
		logger: logger, resolver: resolver, root: root, now: time.Now, retention: retention,
		inos: map[string][]uint64{}, lastStart: map[string]time.Time{}, paths: map[string]string{},
		series: map[restartKey]*restartSeries{},
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
		r.report(ctx, start{id: id, ino: cg.ID, path: cg.Path}, true)
	}
}

func (r *restarts) cgroupCreated(path string) {
	if !ownContainerCgroup(path) {
		return
	}
	id, _ := identity.ContainerIDFromCgroupPath(path)
	var ino uint64
	if r.root != "" {
		ino, _ = identity.CgroupID(r.root, path)
	}
	// The caller is the BPF event loop: read the cgroup id now, while the
	// cgroup surely exists, and name the container without blocking it.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.report(ctx, start{id: id, ino: ino, path: path}, false)
	}()
}

// report counts a start unless another report of the same start was
// counted: same container id and same cgroup id, or, without a cgroup id,
// within sameStartWindow.
func (r *restarts) report(ctx context.Context, s start, first bool) {
	r.logger.Debug("container start reported", "container_id", s.id, "cgroup_id", s.ino, "first", first, "from_docker", s.who != nil)
	now := r.now()
	r.mu.Lock()
	if s.path != "" {
		r.paths[s.id] = s.path
	}
	if s.ino != 0 {
		seen := r.inos[s.id]
		for _, ino := range seen {
			if ino == s.ino {
				r.mu.Unlock()
				return
			}
		}
		if len(seen) >= inosPerContainer {
			seen = seen[1:]
		}
		r.inos[s.id] = append(seen, s.ino)
	} else if last, ok := r.lastStart[s.id]; ok && now.Sub(last) < sameStartWindow {
		r.mu.Unlock()
		return
	}
	r.lastStart[s.id] = now
	r.mu.Unlock()

	var who identity.Identity
	if s.who != nil {
		who = *s.who
	} else {
		who = r.resolver.Resolve(ctx, s.id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !named(who) {
		r.addPending(pendingStart{id: s.id, first: first, at: now})
		return
	}
	r.countLocked(who, first, now)
}

func named(who identity.Identity) bool { return who.Name != "" || who.Pod != "" }

func (r *restarts) countLocked(who identity.Identity, first bool, now time.Time) {
	if who.Sandbox {
		return // a pod's pause container: kubelet counts its containers' restarts, not the pod's
	}
	k := keyOf(who)
	s, ok := r.series[k]
	if !ok {
		s = &restartSeries{labels: []string{who.Name, who.Image, who.Namespace, who.Pod, who.Container}}
		r.series[k] = s
	}
	if first {
		s.seeded = true
	} else {
		s.starts++
	}
	s.lastSeen = now
}

func (r *restarts) addPending(p pendingStart) {
	if len(r.pending) >= pendingMax {
		r.logger.Warn("too many container starts without a name; dropping the oldest", "container_id", r.pending[0].id)
		r.pending = r.pending[1:]
	}
	r.pending = append(r.pending, p)
}

// drainLocked names the pending starts a runtime can name now and drops
// those none could name for pendingMaxAge. Resolve answers misses from its
// cache for a few seconds, so this is cheap while a runtime is down.
func (r *restarts) drainLocked(ctx context.Context) {
	now := r.now()
	kept := r.pending[:0]
	for _, p := range r.pending {
		who := r.resolver.Resolve(ctx, p.id)
		switch {
		case named(who):
			r.countLocked(who, p.first, now)
		case now.Sub(p.at) < pendingMaxAge:
			kept = append(kept, p)
		default:
			r.logger.Debug("dropping a start no runtime could name", "container_id", p.id)
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

// expireLocked drops identities that have not held a running container for
// the retention, and the per-container state of containers that are gone.
func (r *restarts) expireLocked() {
	now := r.now()
	running := map[string]bool{}
	for id, p := range r.paths {
		if r.root != "" {
			if _, err := identity.CgroupID(r.root, p); err == nil {
				running[id] = true
				continue
			}
		}
		if now.Sub(r.lastStart[id]) > r.retention {
			delete(r.paths, id)
			delete(r.inos, id)
			delete(r.lastStart, id)
		}
	}
	for id := range running {
		who := r.resolver.Resolve(context.Background(), id)
		if s, ok := r.series[keyOf(who)]; ok && named(who) {
			s.lastSeen = now
		}
	}
	for k, s := range r.series {
		if now.Sub(s.lastSeen) > r.retention {
			delete(r.series, k)
		}
	}
}

func (r *restarts) collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	r.drainLocked(ctx)
	cancel()
	out := make([]prometheus.Metric, 0, len(r.series))
	for _, s := range r.series {
		out = append(out, prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, s.restarts(), s.labels...))
	}
	r.mu.Unlock()
	for _, m := range out {
		ch <- m
	}
}

// watchDocker counts starts from Docker's event stream, reconnecting when
// the engine restarts. Without BPF it is the only source of starts; with
// BPF, both report each start and the cgroup id merges them.
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
	}
	s := start{id: id}
	if named(who) {
		s.who = &who
	}
	// The cgroup id merges this report with the BPF one of the same start.
	if r.root != "" {
		r.mu.Lock()
		known := r.paths[id]
		r.mu.Unlock()
		for _, p := range []string{known, "/docker/" + id, "/system.slice/docker-" + id + ".scope"} {
			if p == "" {
				continue
			}
			if ino, err := identity.CgroupID(r.root, p); err == nil {
				s.ino, s.path = ino, p
				break
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r.report(cctx, s, false)
}
