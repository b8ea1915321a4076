package resources

import (
	"errors"
	"flag"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/cadvisor/container"
	"github.com/google/cadvisor/container/common"
	"github.com/google/cadvisor/container/libcontainer"
	"github.com/google/cadvisor/fs"
	info "github.com/google/cadvisor/info/v1"
	"github.com/google/cadvisor/manager"
	"github.com/google/cadvisor/watcher"
)

// cAdvisor's manager (v0.55.1) adds and removes containers from two
// goroutines: the one that handles the cgroup watcher's events, and global
// housekeeping, which rescans the hierarchy every
// --global_housekeeping_interval. manager.createContainer checks that a name
// is unknown and stores it later without a lock, and destroyContainer deletes
// the name and its aliases one key at a time, so a rescan that meets a
// container being added or removed by the event goroutine makes two
// containerData for one cgroup. The one overwritten in the map keeps its
// housekeeping goroutine for good; when the two came from different factories
// (Docker while the container ran, raw once it had exited), the Docker one's
// aliases outlive the canonical name, and its series stay on /metrics for good,
// since the rescan only looks at canonical names (google/cadvisor#3924).
//
// So the rescan is off, and a reconciler does its work through the event
// channel, where the event goroutine handles one add or remove at a time.

// rescanOff is cAdvisor's --global_housekeeping_interval while a collector
// runs: long enough that its rescan never runs.
const rescanOff = 100 * 365 * 24 * time.Hour

// DefaultReconcileInterval is how often the reconciler compares cAdvisor's
// containers with the cgroup hierarchy. A difference must show in two passes
// in a row, so a missed cgroup event is mended within two intervals.
const DefaultReconcileInterval = 15 * time.Second

const reconcilerPlugin = "breakwater-reconciler"

func init() {
	if err := container.RegisterPlugin(reconcilerPlugin, plugin{}); err != nil {
		panic(err)
	}
}

// nextReconciler is handed to the manager that starts next; New sets it
// under managerMu, around manager.Start.
var nextReconciler *reconciler

// plugin is how the reconciler reaches the manager's event channel: cAdvisor
// starts every plugin's watcher with it.
type plugin struct{}

func (plugin) InitializeFSContext(*fs.Context) error { return nil }

func (plugin) Register(f info.MachineInfoFactory, _ fs.FsInfo, metrics container.MetricSet) (watcher.ContainerWatcher, error) {
	r := nextReconciler
	if r == nil {
		return nil, nil // a manager breakwater did not start
	}
	m, ok := f.(manager.Manager)
	if !ok {
		return nil, errors.New("the cAdvisor manager is not a manager.Manager")
	}
	// The hierarchies cAdvisor's raw watcher and rescan use.
	paths, err := libcontainer.GetCgroupSubsystems(metrics)
	if err != nil {
		return nil, err
	}
	r.known = func() map[string]bool { return managedContainers(m) }
	r.list = func() (map[string]bool, error) {
		refs, err := common.ListContainers("/", paths, container.ListRecursive)
		if err != nil {
			return nil, err
		}
		out := make(map[string]bool, len(refs)+1)
		out["/"] = true
		for _, ref := range refs {
			out[ref.Name] = true
		}
		return out, nil
	}
	r.exists = func(name string) bool { return common.CgroupExists(common.MakeCgroupPaths(paths, name)) }
	return r, nil
}

// managedContainers are the names of the containers the manager holds, each
// once, from its debug listing: the one call that neither reads cgroups nor
// fails.
func managedContainers(m manager.Manager) map[string]bool {
	out := map[string]bool{}
	for _, line := range m.DebugInfo()["Managed containers"] {
		if !strings.HasPrefix(line, "\t") { // namespace and alias lines are indented
			out[line] = true
		}
	}
	return out
}

// reconciler adds the cgroups cAdvisor missed and removes the containers it
// holds whose cgroup is gone, by sending the events its watcher would have
// sent. It is a watcher.ContainerWatcher so that the manager starts and
// stops it with the others.
type reconciler struct {
	logger   *slog.Logger
	interval time.Duration

	known  func() map[string]bool          // containers cAdvisor holds
	list   func() (map[string]bool, error) // cgroups in its hierarchies
	exists func(name string) bool

	stop chan struct{}
	done sync.WaitGroup

	mu     sync.Mutex
	passes int // for tests
	// Differences the last pass found: one pass may meet an event that is
	// still on its way.
	stale, missing map[string]bool
}

func newReconciler(logger *slog.Logger, interval time.Duration) *reconciler {
	if interval <= 0 {
		interval = DefaultReconcileInterval
	}
	return &reconciler{logger: logger, interval: interval, stop: make(chan struct{})}
}

func (r *reconciler) Start(events chan watcher.ContainerEvent) error {
	if r.known == nil {
		return errors.New("reconciler: not registered with a manager")
	}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			if !r.pass(events) {
				return
			}
		}
	}()
	return nil
}

// Stop is called by the manager's event goroutine, which no longer reads
// events: a pass waiting to send one gives up.
func (r *reconciler) Stop() error {
	close(r.stop)
	r.done.Wait()
	return nil
}

// pass compares once and sends the events for differences the previous pass
// found too. It returns false once the reconciler is stopped.
func (r *reconciler) pass(events chan<- watcher.ContainerEvent) bool {
	// Known before listed: a container added in between is only "missing"
	// for this pass, never taken for gone.
	known := r.known()
	listed, err := r.list()
	if err != nil {
		r.logger.Debug("listing cgroups to reconcile cAdvisor's containers", "err", err)
		return true
	}
	stale, missing := map[string]bool{}, map[string]bool{}
	for name := range known {
		if !listed[name] {
			stale[name] = true
		}
	}
	for name := range listed {
		if !known[name] {
			missing[name] = true
		}
	}
	var send []watcher.ContainerEvent
	r.mu.Lock()
	for name := range stale {
		if r.stale[name] && !r.exists(name) {
			send = append(send, watcher.ContainerEvent{EventType: watcher.ContainerDelete, Name: name, WatchSource: watcher.Raw})
		}
	}
	for name := range missing {
		if r.missing[name] && r.exists(name) {
			send = append(send, watcher.ContainerEvent{EventType: watcher.ContainerAdd, Name: name, WatchSource: watcher.Raw})
		}
	}
	r.stale, r.missing = stale, missing
	r.passes++
	r.mu.Unlock()

	for _, ev := range send {
		r.logger.Debug("reconciling cAdvisor with the cgroup hierarchy", "cgroup", ev.Name, "add", ev.EventType == watcher.ContainerAdd)
		select {
		case events <- ev:
		case <-r.stop:
			return false
		}
	}
	return true
}

func (r *reconciler) passCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passes
}

// turnRescanOff sets cAdvisor's global housekeeping interval so that its
// rescan never runs; the reconciler does that work.
func turnRescanOff() error {
	return flag.Set("global_housekeeping_interval", rescanOff.String())
}
