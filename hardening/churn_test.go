package hardening

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/testenv"
)

// perContainerMaps are the BPF maps with an entry per container cgroup.
var perContainerMaps = []string{"tracked_cgroups", "containers", "denied", "event_sent"}

// snapshot is what must come back after churn.
type snapshot struct {
	tracked    float64        // breakwater_tracked_containers
	running    int            // containers running on the host (any owner)
	series     int            // every series on /metrics
	ownSeries  int            // series not about a running container
	ownBy      map[string]int // the same, by metric name
	stale      int            // series naming a container that no longer runs
	entries    map[string]int // BPF map entries, by map
	dead       map[string]int // entries whose cgroup no longer exists
	goroutines float64
	fds        float64
	rss        float64
}

func (s snapshot) String() string {
	return fmt.Sprintf("tracked=%v running=%d series=%d own=%d stale=%d maps=%v dead=%v goroutines=%v fds=%v rss=%.1fMiB",
		s.tracked, s.running, s.series, s.ownSeries, s.stale, s.entries, s.dead, s.goroutines, s.fds, s.rss/(1<<20))
}

// clean: nothing is left of containers that are gone. Other engineers'
// containers on the same host come and go; they are neither counted
// against nor required of the exporter.
func (s snapshot) clean() bool {
	// Other engineers' containers may sit in cgroups the exporter does not
	// count (a --cgroup-parent outside the runtime's tree), so running is
	// an upper bound.
	if s.stale != 0 || int(s.tracked) > s.running {
		return false
	}
	for _, n := range s.dead {
		if n != 0 {
			return false
		}
	}
	return true
}

func (e *exporter) snapshot(t *testing.T) snapshot {
	t.Helper()
	// Running containers by id and, for the restart counters that carry no
	// container_id, by name.
	running, nRunning := map[string]bool{}, 0
	if ps := docker(t, "ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"); ps != "" {
		for _, line := range strings.Split(ps, "\n") {
			nRunning++
			for _, f := range strings.Fields(line) {
				running[f] = true
			}
		}
	}
	f := e.metrics()
	s := snapshot{running: nRunning, series: f.series(), entries: map[string]int{}, dead: map[string]int{}, ownBy: map[string]int{}}
	s.tracked = f.value(t, "breakwater_tracked_containers", nil)
	s.goroutines = f.value(t, "go_goroutines", nil)
	s.fds = f.value(t, "process_open_fds", nil)
	s.rss = f.value(t, "process_resident_memory_bytes", nil)
	for _, mf := range f {
		for _, m := range mf.Metric {
			id := label(m, "container_id")
			if id != "" && !running[id] {
				s.stale++
			}
			if mf.GetName() == "breakwater_container_restarts_total" {
				id = label(m, "name")
			}
			if id == "" || !running[id] {
				s.ownSeries++
				s.ownBy[mf.GetName()]++
			}
		}
	}
	live := liveCgroups(t)
	for name, keys := range bpfMapKeys(t, e.pid()) {
		s.entries[name] = len(keys)
		for _, k := range keys {
			if !live[k] {
				s.dead[name]++
			}
		}
	}
	return s
}

// liveCgroups is the set of container cgroup ids that exist now.
func liveCgroups(t *testing.T) map[uint64]bool {
	t.Helper()
	root, err := identity.UnifiedRoot()
	if err != nil {
		t.Fatal(err)
	}
	cgs, err := identity.ContainerCgroups(root)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, c := range cgs {
		out[c.ID] = true
	}
	return out
}

// bpfMapKeys dumps the per-container maps a process holds, with bpftool,
// and returns the cgroup id (the first 8 bytes) of every key, by map name.
func bpfMapKeys(t *testing.T, pid int) map[string][]uint64 {
	t.Helper()
	out := map[string][]uint64{}
	for id := range testenv.HeldMaps(t, pid) {
		show, err := exec.Command("bpftool", "-j", "map", "show", "id", fmt.Sprint(id)).Output()
		if err != nil {
			t.Fatalf("bpftool map show id %d: %v", id, err)
		}
		var info struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(show, &info); err != nil {
			t.Fatal(err)
		}
		wanted := false
		for _, n := range perContainerMaps {
			wanted = wanted || n == info.Name
		}
		if !wanted {
			continue
		}
		dump, err := exec.Command("bpftool", "-j", "map", "dump", "id", fmt.Sprint(id)).Output()
		if err != nil {
			t.Fatalf("bpftool map dump id %d: %v", id, err)
		}
		var entries []struct {
			Key []string `json:"key"`
		}
		if err := json.Unmarshal(dump, &entries); err != nil {
			t.Fatalf("bpftool map dump id %d: %v", id, err)
		}
		keys := []uint64{}
		for _, en := range entries {
			var raw [8]byte
			for i := 0; i < 8 && i < len(en.Key); i++ {
				v, err := strconv.ParseUint(strings.TrimPrefix(en.Key[i], "0x"), 16, 8)
				if err != nil {
					t.Fatalf("map %s key %v: %v", info.Name, en.Key, err)
				}
				raw[i] = byte(v)
			}
			keys = append(keys, binary.LittleEndian.Uint64(raw[:]))
		}
		out[info.Name] = keys
	}
	for _, n := range perContainerMaps {
		if _, ok := out[n]; !ok {
			t.Fatalf("the exporter holds no map named %s", n)
		}
	}
	return out
}

// churn starts and removes n short-lived containers, workers at a time.
// Every other one makes a blocked mount attempt first, so that it leaves
// counters, a denied-syscall entry, an event_sent entry and series that must
// expire.
func churn(t *testing.T, prefix string, n, workers int) {
	t.Helper()
	attempt := built(t, "attempt")
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	var firstErr sync.Once
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				name := fmt.Sprintf("%s-%d", prefix, i)
				args := []string{"run", "--rm", "--name", name, "--network", "none", "--pull", "never",
					"-v", attempt + ":/attempt:ro", testenv.Image}
				if i%2 == 0 {
					args = append(args, "true")
				} else {
					args = append(args, "/attempt", "mount")
				}
				if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
					failed.Add(1)
					_ = exec.Command("docker", "rm", "-f", name).Run()
					firstErr.Do(func() { t.Logf("docker run %s: %v\n%s", name, err, out) })
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > int64(n)/100 {
		t.Fatalf("%d of %d containers failed to run", f, n)
	}
}

// TestChurn runs 500 short-lived containers past the exporter with a 10s
// series expiry: afterwards the tracked containers, the per-container BPF
// map entries and the series are back where they started, and goroutines,
// open files and RSS have not grown.
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn: minutes of container starts")
	}
	testenv.Docker(t)
	e := start(t, nil, "--collector.security.expiry=10s", "--collector.resources.restarts-retention=10s", "--log.level=warn")
	e.metrics()

	settle := func(what string) snapshot {
		t.Helper()
		var s snapshot
		// Removal is seen at once (cgroup_rmdir), expiry runs on the 15s
		// resync after --collector.security.expiry.
		began := time.Now()
		for deadline := began.Add(3 * time.Minute); ; time.Sleep(5 * time.Second) {
			s = e.snapshot(t)
			if s.clean() || time.Now().After(deadline) {
				break
			}
			t.Logf("%s, %s: %v", what, time.Since(began).Round(time.Second), s)
		}
		t.Logf("%s: %v", what, s)
		if !s.clean() {
			t.Errorf("%s: state of removed containers left behind: %v", what, s)
		}
		return s
	}

	// A warm-up fills the pools, caches and goroutines that exist once.
	churn(t, "bw-hard-warm", 20, 4)
	base := settle("before churn")

	const n = 500
	began := time.Now()
	churn(t, "bw-hard-churn", n, 6)
	took := time.Since(began)
	t.Logf("churn: %d containers started and removed in %s (%.1f/s)", n, took.Round(time.Second), float64(n)/took.Seconds())
	during := e.snapshot(t)
	t.Logf("right after churn: %v", during)

	after := settle("after expiry")
	expired := e.metrics().value(t, "breakwater_series_expired_total", nil)
	t.Logf("breakwater_series_expired_total = %v", expired)
	if expired < n {
		t.Errorf("breakwater_series_expired_total = %v, want at least the %d churned containers", expired, n)
	}
	if after.ownSeries > base.ownSeries {
		var grew []string
		for name, n := range after.ownBy {
			if n > base.ownBy[name] {
				grew = append(grew, fmt.Sprintf("%s %d -> %d", name, base.ownBy[name], n))
			}
		}
		t.Errorf("series not about a running container: %d before, %d after; grown: %v", base.ownSeries, after.ownSeries, grew)
	}
	// Small tolerances: the runtime's idle pools and the GC's heap target
	// move a little between any two scrapes.
	// cAdvisor keeps a housekeeping goroutine per container: other
	// engineers' containers that started meanwhile bring theirs.
	others := max(0, after.running-base.running)
	if after.goroutines > base.goroutines+5+float64(2*others) {
		t.Errorf("goroutines grew from %v to %v", base.goroutines, after.goroutines)
	}
	if after.fds > base.fds+5 {
		t.Errorf("open fds grew from %v to %v", base.fds, after.fds)
	}
	if limit := base.rss*1.25 + 16<<20; after.rss > limit {
		t.Errorf("RSS grew from %.1fMiB to %.1fMiB (limit %.1fMiB)", base.rss/(1<<20), after.rss/(1<<20), limit/(1<<20))
	}
}
