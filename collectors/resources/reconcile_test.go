package resources

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/cadvisor/container"
	"github.com/google/cadvisor/container/libcontainer"
	"github.com/google/cadvisor/watcher"

	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/testenv"
)

// TestReconcilerPass: a difference is acted on only when two passes in a row
// find it and the cgroup is (for an add) or is not (for a remove) there when
// the event is sent; what was fine in between starts over.
func TestReconcilerPass(t *testing.T) {
	var known, listed, present map[string]bool
	r := newReconciler(testLogger(), time.Hour)
	r.known = func() map[string]bool { return known }
	r.list = func() (map[string]bool, error) { return listed, nil }
	r.exists = func(name string) bool { return present[name] }
	set := func(names ...string) map[string]bool {
		m := map[string]bool{"/": true}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	pass := func() []string {
		t.Helper()
		events := make(chan watcher.ContainerEvent, 100)
		if !r.pass(events) {
			t.Fatal("pass stopped")
		}
		close(events)
		var out []string
		for ev := range events {
			op := "add"
			if ev.EventType == watcher.ContainerDelete {
				op = "delete"
			}
			if ev.WatchSource != watcher.Raw {
				t.Errorf("event %+v not from the raw source", ev)
			}
			out = append(out, op+" "+ev.Name)
		}
		sort.Strings(out)
		return out
	}
	for _, step := range []struct {
		what                   string
		known, listed, present []string
		want                   []string
	}{
		{"in step", []string{"/a"}, []string{"/a"}, []string{"/a"}, nil},
		{"first sight of a gone and a missed cgroup", []string{"/a", "/gone"}, []string{"/a", "/missed"}, []string{"/a", "/missed"}, nil},
		{"second sight", []string{"/a", "/gone"}, []string{"/a", "/missed"}, []string{"/a", "/missed"}, []string{"add /missed", "delete /gone"}},
		{"an event on its way seen once", []string{"/a", "/b"}, []string{"/a", "/c"}, []string{"/a", "/c"}, nil},
		{"then handled: nothing to do", []string{"/a", "/c"}, []string{"/a", "/c"}, []string{"/a", "/c"}, nil},
		{"gone from the listing but back when sent", []string{"/a", "/d"}, []string{"/a"}, []string{"/a", "/d"}, nil},
		{"again", []string{"/a", "/d"}, []string{"/a"}, []string{"/a", "/d"}, nil},
		{"missed but gone when sent", []string{"/a"}, []string{"/a", "/e"}, []string{"/a"}, nil},
		{"again", []string{"/a"}, []string{"/a", "/e"}, []string{"/a"}, nil},
	} {
		known, listed, present = set(step.known...), set(step.listed...), set(step.present...)
		got := pass()
		if strings.Join(got, ",") != strings.Join(step.want, ",") {
			t.Errorf("%s: events %v, want %v", step.what, got, step.want)
		}
	}
	if n := r.passCount(); n != 9 {
		t.Errorf("passes = %d, want 9", n)
	}
}

// TestReconcilerStops: a pass blocked on an event channel nobody reads any
// more (the manager is stopping) returns once the reconciler is stopped.
func TestReconcilerStops(t *testing.T) {
	r := newReconciler(testLogger(), time.Millisecond)
	r.known = func() map[string]bool { return map[string]bool{"/": true} }
	r.list = func() (map[string]bool, error) { return map[string]bool{"/": true, "/x": true}, nil }
	r.exists = func(string) bool { return true }
	if err := r.Start(make(chan watcher.ContainerEvent)); err != nil {
		t.Fatal(err)
	}
	for r.passCount() < 2 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error)
	go func() { done <- r.Stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop blocked behind an unread event")
	}
	if err := newReconciler(nil, 0).Start(nil); err == nil {
		t.Error("an unregistered reconciler started")
	}
}

// TestReconcilerMendsWhatTheWatcherMisses: cAdvisor's cgroup watcher does
// not watch below a ".mount" cgroup, so a container-like cgroup made there
// reaches cAdvisor, and leaves it, only through the reconciler (before, only
// through cAdvisor's minute-long rescan).
func TestReconcilerMendsWhatTheWatcherMisses(t *testing.T) {
	testenv.RequireRoot(t)
	c := sharedCollector(t)
	parent := fmt.Sprintf("/bw-res-unwatched-%d.mount", os.Getpid())
	name := parent + "/" + randomID(t)
	hierarchies := cgroupMounts(t)
	for _, h := range hierarchies {
		if err := os.Mkdir(filepath.Join(h, parent), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeCgroup(filepath.Join(h, parent)) })
	}
	for _, h := range hierarchies {
		if err := os.Mkdir(filepath.Join(h, name), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeCgroup(filepath.Join(h, name)) })
	}
	eventually(t, 20*time.Second, "cAdvisor samples the unwatched cgroup", func() (bool, string) {
		_, ok := find(gather(t, c), "container_last_seen", map[string]string{"id": name})
		return managedContainers(c.manager)[name] && ok, "not yet"
	})
	for _, h := range hierarchies {
		if err := removeCgroup(filepath.Join(h, name)); err != nil {
			t.Fatal(err)
		}
	}
	leftNothing(t, c, func(cgroup string) bool { return cgroup == name })
}

// TestChurnLeavesNothing makes and removes container-like cgroups (a 64-hex
// name below a parent of this test, in every hierarchy cAdvisor watches, as
// runc does) and short-lived Docker containers, with cAdvisor's own rescan
// set to run every millisecond (by sharedCollector) so that it meets nearly
// every add and remove. Afterwards cAdvisor holds none of them, no series names them, and every
// cAdvisor housekeeping goroutine belongs to a container cAdvisor holds.
// Before the rescan was replaced, a rescan racing the cgroup watcher's events
// left containers whose housekeeping goroutines nothing could stop (dozens
// in the cgroup part), and removed Docker containers whose aliases, and
// sometimes series, stayed for good (one in 20 or so in the Docker part).
func TestChurnLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	c := sharedCollector(t)

	t.Run("cgroups", func(t *testing.T) {
		parent := fmt.Sprintf("/bw-res-churn-%d", os.Getpid())
		hierarchies := cgroupMounts(t)
		for _, h := range hierarchies {
			if err := os.Mkdir(filepath.Join(h, parent), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(filepath.Join(h, parent)) })
		}
		ours := churnInParallel(t, 600, 6, func(i int) string {
			name := parent + "/" + randomID(t)
			for _, h := range hierarchies {
				if err := os.Mkdir(filepath.Join(h, name), 0o755); err != nil {
					t.Error(err)
					return ""
				}
			}
			// Long enough for the watcher to see it and the Docker factory
			// to ask the engine about it, short enough to be gone while
			// cAdvisor is still adding it.
			time.Sleep(time.Duration(i%16) * time.Millisecond)
			for _, h := range hierarchies {
				if err := removeCgroup(filepath.Join(h, name)); err != nil {
					t.Error(err)
				}
			}
			return name
		})
		leftNothing(t, c, func(cgroup string) bool { return ours[cgroup] })
	})

	t.Run("containers", func(t *testing.T) {
		dir := t.TempDir()
		prefix := fmt.Sprintf("bw-res-churn-%d", os.Getpid())
		ours := churnInParallel(t, 40, 6, func(i int) string {
			name := fmt.Sprintf("%s-%d", prefix, i)
			cid := filepath.Join(dir, name)
			out, err := exec.Command("docker", "run", "--rm", "--name", name, "--cidfile", cid,
				"--network", "none", "--pull", "never", testenv.Image, "true").CombinedOutput()
			if err != nil {
				_ = exec.Command("docker", "rm", "-f", name).Run()
				t.Errorf("docker run %s: %v\n%s", name, err, out)
				return ""
			}
			id, err := os.ReadFile(cid)
			if err != nil {
				t.Error(err)
			}
			return string(id)
		})
		leftNothing(t, c, func(cgroup string) bool {
			id, _ := identity.ContainerIDFromCgroupPath(cgroup)
			return ours[id]
		})
	})
}

// churnInParallel runs one(i) for i in [0, n) on workers goroutines and
// returns the set of what the calls returned.
func churnInParallel(t *testing.T, n, workers int, one func(i int) string) map[string]bool {
	t.Helper()
	out := make(chan string, n)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				out <- one(i)
			}
		}()
	}
	wg.Wait()
	close(out)
	set := map[string]bool{}
	for s := range out {
		if s != "" {
			set[s] = true
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return set
}

// leftNothing waits for two reconcile passes and up to 30s more for
// cAdvisor to hold no cgroup that ours picks, for no series to name one, and
// for every cAdvisor housekeeping goroutine to belong to a container cAdvisor
// holds (c's manager is the only one in this test binary).
func leftNothing(t *testing.T, c *Collector, ours func(cgroup string) bool) {
	t.Helper()
	passes := c.rescan.passCount()
	var last string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var held []string
		for name := range managedContainers(c.manager) {
			if ours(name) {
				held = append(held, name)
			}
		}
		series := 0
		for _, mf := range gather(t, c) {
			for _, m := range mf.GetMetric() {
				if ours(labels(m)["id"]) {
					series++
				}
			}
		}
		goroutines, containers := housekeepingGoroutines(t), len(managedContainers(c.manager))
		last = fmt.Sprintf("cAdvisor holds %d removed cgroups %v, %d series name them; %d housekeeping goroutines for %d containers",
			len(held), held, series, goroutines, containers)
		if len(held) == 0 && series == 0 && goroutines == containers && c.rescan.passCount() >= passes+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(last)
		}
	}
	t.Log(last)
}

// cgroupMounts are the mount points of the hierarchies cAdvisor watches.
func cgroupMounts(t *testing.T) []string {
	t.Helper()
	ms := container.MetricSet{}
	if err := ms.Set(DefaultMetrics); err != nil {
		t.Fatal(err)
	}
	subsystems, err := libcontainer.GetCgroupSubsystems(ms)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range subsystems {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

func randomID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Error(err)
	}
	return hex.EncodeToString(b)
}

// removeCgroup retries rmdir while the kernel still tears the cgroup down.
func removeCgroup(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

var goroutineGroup = regexp.MustCompile(`(?m)^(\d+) @[^\n]*\n(?:#[^\n]*\n)*`)

// housekeepingGoroutines counts cAdvisor's per-container goroutines in this
// process.
func housekeepingGoroutines(t *testing.T) int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range goroutineGroup.FindAllStringSubmatch(buf.String(), -1) {
		if strings.Contains(g[0], "manager.(*containerData).housekeeping+") {
			k, _ := strconv.Atoi(g[1])
			n += k
		}
	}
	return n
}
