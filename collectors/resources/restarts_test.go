package resources

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater/breakwater/exporter/identity"
)

// A start no runtime can name yet (Docker down or slow on a node that
// runs containerd pods too) must not hold back the starts that can be
// named, and the count must not depend on the order names arrive in.
func TestRestartsIndependentOfNamingOrder(t *testing.T) {
	ctx := context.Background()
	// No runtime: only starts that carry their identity are named.
	r := newRestarts(testLogger(), identity.NewResolver(nil, identity.Options{}), 0)
	crash := identity.Identity{Namespace: "dev", Pod: "web-0", Container: "crash", Image: "busybox"}
	seeded := identity.Identity{Name: "db", Image: "postgres"}

	r.report(ctx, fromCgroup, start{id: "unnamed", ino: 1}, false)
	pause := identity.Identity{Namespace: "dev", Pod: "web-0", Image: "pause", Sandbox: true}
	r.report(ctx, fromCgroup, start{id: "p1", ino: 2, who: &pause}, false)
	r.report(ctx, fromCgroup, start{id: "p2", ino: 3, who: &pause}, false)
	for i := uint64(0); i < 8; i++ {
		who := crash
		who.ContainerID = "c" + string(rune('0'+i))
		r.report(ctx, fromCgroup, start{id: who.ContainerID, ino: 10 + i, who: &who}, false)
	}
	// The db container ran before breakwater started; its restart is
	// named before the report of that first run.
	r.report(ctx, fromCgroup, start{id: "db", ino: 30, who: &seeded}, false)
	r.report(ctx, fromCgroup, start{id: "db", ino: 31, who: &seeded}, true)

	got := map[string]float64{}
	for k, s := range r.series {
		got[k.container+k.name] = s.restarts()
	}
	if got["crash"] != 7 {
		t.Errorf("crash: %v restarts behind an unnamed start, want 7 (eight starts)", got["crash"])
	}
	if got["db"] != 1 {
		t.Errorf("db: %v restarts, want 1 (one start after a seeded run, whatever the order)", got["db"])
	}
	if len(r.series) != 2 {
		t.Errorf("series %v: the pod sandbox has none", got)
	}
	if len(r.pending) != 1 {
		t.Errorf("pending %v, want the unnamed start only", r.pending)
	}
}

// Each source reports every start once, at its own pace: the Docker event
// of a one-shot container is read after its cgroup is gone (no cgroup id)
// and, under load, long after the BPF report; either may come first, and
// either may miss a start. One start is one start whatever the timing.
func TestRestartsOneStartTwoReports(t *testing.T) {
	ctx := context.Background()
	who := func(name string) *identity.Identity { return &identity.Identity{Name: name, Image: "busybox"} }
	cgroup := func(r *restarts, id, name string, ino uint64) {
		r.report(ctx, fromCgroup, start{id: id, ino: ino, who: who(name)}, false)
	}
	docker := func(r *restarts, id, name string) { r.report(ctx, fromDocker, start{id: id, who: who(name)}, false) }
	for _, tc := range []struct {
		name  string
		steps func(r *restarts, clock *time.Time)
		want  float64
	}{
		{"BPF, then Docker seconds later", func(r *restarts, clock *time.Time) {
			cgroup(r, "a", "one-shot", 1)
			*clock = clock.Add(3 * time.Second)
			docker(r, "a", "one-shot")
		}, 0},
		{"Docker, then BPF seconds later", func(r *restarts, clock *time.Time) {
			docker(r, "a", "one-shot")
			*clock = clock.Add(3 * time.Second)
			cgroup(r, "a", "one-shot", 1)
		}, 0},
		{"Docker only", func(r *restarts, clock *time.Time) { docker(r, "a", "one-shot") }, 0},
		{"a restart policy: three runs, reports interleaved late", func(r *restarts, clock *time.Time) {
			cgroup(r, "a", "looper", 1)
			cgroup(r, "a", "looper", 2)
			docker(r, "a", "looper")
			cgroup(r, "a", "looper", 3)
			*clock = clock.Add(time.Second)
			docker(r, "a", "looper")
			docker(r, "a", "looper")
		}, 2},
		{"three runs, BPF lost the second", func(r *restarts, clock *time.Time) {
			cgroup(r, "a", "looper", 1)
			docker(r, "a", "looper")
			docker(r, "a", "looper")
			cgroup(r, "a", "looper", 3)
			docker(r, "a", "looper")
		}, 2},
		{"the name again, a new container", func(r *restarts, clock *time.Time) {
			cgroup(r, "a", "reused", 1)
			docker(r, "a", "reused")
			cgroup(r, "b", "reused", 2)
			docker(r, "b", "reused")
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRestarts(testLogger(), identity.NewResolver(nil, identity.Options{}), 0)
			clock := time.Unix(1e9, 0)
			r.now = func() time.Time { return clock }
			tc.steps(r, &clock)
			if len(r.series) != 1 {
				t.Fatalf("%d series, want 1", len(r.series))
			}
			for _, s := range r.series {
				if s.restarts() != tc.want {
					t.Errorf("restarts = %v, want %v", s.restarts(), tc.want)
				}
			}
		})
	}
}

// A name whose containers are gone and that never restarted has nothing to
// say: no series, but its state is kept for the retention, so that its
// next start is counted as the restart it is. A name that restarted keeps
// its series for the retention.
func TestRestartsSeriesOnlyWithSomethingToSay(t *testing.T) {
	ctx := context.Background()
	r := newRestarts(testLogger(), identity.NewResolver(nil, identity.Options{}), 0)
	r.root = t.TempDir() // a cgroup hierarchy of plain directories: a container runs while its directory exists
	clock := time.Unix(1e9, 0)
	r.now = func() time.Time { return clock }
	run := func(id, name string, ino uint64) {
		p := "/docker/" + id
		if err := os.MkdirAll(filepath.Join(r.root, p), 0o755); err != nil {
			t.Fatal(err)
		}
		who := identity.Identity{Name: name, Image: "busybox"}
		r.report(ctx, fromCgroup, start{id: id, ino: ino, path: p, who: &who}, false)
		r.report(ctx, fromDocker, start{id: id, who: &who}, false)
	}
	exit := func(id string) {
		if err := os.Remove(filepath.Join(r.root, "docker", id)); err != nil {
			t.Fatal(err)
		}
	}
	exported := func() map[string]float64 {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(restartsOnly{r})
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				out[labels(m)["name"]] = value(m)
			}
		}
		return out
	}
	check := func(when string, want map[string]float64) {
		t.Helper()
		if got := exported(); !maps.Equal(got, want) {
			t.Errorf("%s: exported %v, want %v", when, got, want)
		}
	}

	run("a", "running", 1)
	for i := range 50 {
		id := "oneshot" + strconv.Itoa(i)
		run(id, id, uint64(10+i))
		exit(id)
	}
	for ino := uint64(100); ino < 103; ino++ {
		run("l", "looper", ino)
		exit("l")
	}
	check("after the churn", map[string]float64{"running": 0, "looper": 2})
	if len(r.series) != 52 {
		t.Errorf("%d identities in memory, want all 52 for the retention", len(r.series))
	}

	clock = clock.Add(5 * time.Minute)
	r.mu.Lock()
	r.expireLocked()
	r.mu.Unlock()
	run("b", "oneshot7", 200) // a new container under a gone name: a restart of that name
	check("a name back", map[string]float64{"running": 0, "looper": 2, "oneshot7": 1})

	clock = clock.Add(DefaultRestartsRetention + time.Minute)
	r.mu.Lock()
	r.expireLocked()
	r.mu.Unlock()
	check("after the retention", map[string]float64{"running": 0, "oneshot7": 1})
	if len(r.series) != 2 || len(r.containers) != 2 {
		t.Errorf("after the retention: %d identities, %d containers in memory, want the 2 running", len(r.series), len(r.containers))
	}
}
