package hardening

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cadvisorcontainer "github.com/google/cadvisor/container"
	"github.com/google/cadvisor/container/common"
	"github.com/google/cadvisor/container/libcontainer"

	"github.com/breakwater/breakwater/collectors/resources"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/testenv"
)

// perContainerMaps are the BPF maps with an entry per container cgroup.
var perContainerMaps = []string{"tracked_cgroups", "containers", "denied", "event_sent"}

// churned is every container the test ran; all are removed once a round ends.
type churned struct {
	mu    sync.Mutex
	ids   map[string]bool
	names map[string]bool
}

func (c *churned) add(id, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id != "" {
		c.ids[id] = true
	}
	c.names[name] = true
}

// mapKey is one entry of a per-container BPF map.
type mapKey struct {
	bpfMap string
	cgroup uint64
}

// snapshot is the per-container state of the exporter at one time. Other
// engineers' containers on the same host come and go meanwhile (through
// Docker or containerd alone): state is attributed to this test's containers
// by id and name, and to removed cgroups by the cgroup id, never by what
// `docker ps` shows.
type snapshot struct {
	ours    int            // series naming a container of this test
	oursBy  map[string]int // the same, by metric name
	host    int            // series naming no container at all
	hostBy  map[string]int // the same, by metric name
	series  int            // every series on /metrics
	tracked float64        // breakwater_tracked_containers
	live    int            // container cgroups that exist
	entries map[string]int // BPF map entries, by map
	dead    map[mapKey]bool
}

func (s snapshot) String() string {
	dead := map[string]int{}
	for k := range s.dead {
		dead[k.bpfMap]++
	}
	return fmt.Sprintf("series=%d ours=%d %v host=%d tracked=%v live=%d maps=%v dead=%v",
		s.series, s.ours, s.oursBy, s.host, s.tracked, s.live, s.entries, dead)
}

func (e *exporter) snapshot(t *testing.T, ours *churned) snapshot {
	t.Helper()
	f := e.metrics()
	s := snapshot{series: f.series(), oursBy: map[string]int{}, hostBy: map[string]int{},
		entries: map[string]int{}, dead: map[mapKey]bool{}}
	s.tracked = f.value(t, "breakwater_tracked_containers", nil)
	ours.mu.Lock()
	for _, mf := range f {
		for _, m := range mf.Metric {
			id, name := label(m, "container_id"), label(m, "name")
			switch {
			case ours.ids[id] || ours.names[name]:
				s.ours++
				s.oursBy[mf.GetName()]++
			case id == "" && name == "":
				s.host++
				s.hostBy[mf.GetName()]++
			}
		}
	}
	ours.mu.Unlock()
	live := liveCgroups(t)
	for _, c := range live {
		if c.own {
			s.live++
		}
	}
	for name, keys := range bpfMapKeys(t, e.pid()) {
		s.entries[name] = len(keys)
		for _, k := range keys {
			if _, ok := live[k]; !ok {
				s.dead[mapKey{name, k}] = true
			}
		}
	}
	return s
}

// totals are the process-wide figures a leak would grow, without what other
// engineers' containers on the host move: cAdvisor's housekeeping goroutine
// per cgroup, and the exporter's connections to the container runtimes (a
// lookup of any container may open one to Docker, which then stays idle for
// a while, or dial containerd the first time; either holds a descriptor and
// two goroutines).
type totals struct {
	goroutines float64 // go_goroutines - cgroups cAdvisor samples - 2 x runtime connections
	fds        float64 // process_open_fds - runtime connections
	rss        float64
}

func (v totals) String() string {
	return fmt.Sprintf("goroutines=%v fds=%v (without cAdvisor's and the runtime connections') rss=%.1fMiB", v.goroutines, v.fds, v.rss/(1<<20))
}

// totals takes the minimum of each figure over samples a second apart in
// which the cgroups and the runtime connections did not change: goroutines
// of a scrape, lookup or event in flight are transient.
func (e *exporter) totals(t *testing.T) totals {
	t.Helper()
	low := totals{math.Inf(1), math.Inf(1), math.Inf(1)}
	for i := 0; i < 5; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		cgroups, conns := sampledCgroups(t), runtimeConns(t, e.pid())
		f := e.metrics()
		if !sameSet(sampledCgroups(t), cgroups) || runtimeConns(t, e.pid()) != conns {
			continue
		}
		low.goroutines = math.Min(low.goroutines, f.value(t, "go_goroutines", nil)-float64(len(cgroups)+2*conns))
		low.fds = math.Min(low.fds, f.value(t, "process_open_fds", nil)-float64(conns))
		low.rss = math.Min(low.rss, f.value(t, "process_resident_memory_bytes", nil))
	}
	if math.IsInf(low.goroutines, 1) {
		t.Fatal("the cgroups or the exporter's runtime connections changed during every sample")
	}
	return low
}

// runtimeConns counts the connections of process pid to the Docker
// engine's and containerd's sockets, with ss: the peers of its Unix sockets
// that those sockets accepted.
func runtimeConns(t *testing.T, pid int) int {
	t.Helper()
	out, err := exec.Command("ss", "-x", "-a", "-p", "-H").Output()
	if err != nil {
		t.Fatalf("ss -xapH: %v", err)
	}
	peers, runtime := map[string]bool{}, map[string]bool{}
	owner := fmt.Sprintf(",pid=%d,", pid)
	for _, line := range strings.Split(string(out), "\n") {
		// Netid State Recv-Q Send-Q Local Inode Peer Inode Process
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		if strings.Contains(line, owner) {
			peers[f[7]] = true
		}
		if strings.HasSuffix(f[4], "/docker.sock") || strings.HasSuffix(f[4], "/containerd.sock") {
			runtime[f[5]] = true
		}
	}
	n := 0
	for ino := range peers {
		if runtime[ino] {
			n++
		}
	}
	return n
}

// sampledCgroups are the cgroups the exporter's cAdvisor samples, with one
// housekeeping goroutine each: every cgroup in the hierarchies of its metric
// sets, the root included.
func sampledCgroups(t *testing.T) map[string]bool {
	t.Helper()
	sets := cadvisorcontainer.MetricSet{}
	if err := sets.Set(resources.DefaultMetrics); err != nil {
		t.Fatal(err)
	}
	paths, err := libcontainer.GetCgroupSubsystems(sets)
	if err != nil {
		t.Fatal(err)
	}
	cgs, err := common.ListContainers("/", paths, cadvisorcontainer.ListRecursive)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{"/": true}
	for _, c := range cgs {
		out[c.Name] = true
	}
	return out
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// housekeepingAtExit ends the exporter with SIGQUIT, on which the Go runtime
// writes every goroutine's stack to the exporter's log, at a moment the
// cgroups have held still for five seconds (cAdvisor has handled their
// events by then). It returns how many of cAdvisor's
// per-cgroup housekeeping goroutines the exporter had, and the cgroups
// cAdvisor samples just before and just after.
func (e *exporter) housekeepingAtExit(t *testing.T) (goroutines int, before, after map[string]bool) {
	t.Helper()
	before = sampledCgroups(t)
	for still, deadline := time.Duration(0), time.Now().Add(time.Minute); still < 5*time.Second && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		now := sampledCgroups(t)
		if sameSet(now, before) {
			still += 250 * time.Millisecond
		} else {
			still, before = 0, now
		}
	}
	if err := e.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the exporter did not exit on SIGQUIT")
	}
	after = sampledCgroups(t)
	for _, line := range strings.Split(e.logText(), "\n") {
		if strings.HasPrefix(line, "github.com/google/cadvisor/manager.(*containerData).housekeeping(") {
			goroutines++
		}
	}
	if goroutines == 0 {
		t.Fatalf("no cAdvisor housekeeping goroutine in the exporter's SIGQUIT dump:\n%s", e.logText())
	}
	return goroutines, before, after
}

// liveCgroups are the container cgroups that exist now, by cgroup id; own
// says the cgroup is a container's own, not one it made below its own.
func liveCgroups(t *testing.T) map[uint64]struct{ own bool } {
	t.Helper()
	root, err := identity.UnifiedRoot()
	if err != nil {
		t.Fatal(err)
	}
	cgs, err := identity.ContainerCgroups(root)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]struct{ own bool }{}
	for _, c := range cgs {
		id, _ := identity.ContainerIDFromCgroupPath(c.Path)
		parent, _ := identity.ContainerIDFromCgroupPath(filepath.Dir(c.Path))
		out[c.ID] = struct{ own bool }{parent != id}
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

// churn starts and removes n short-lived containers named prefix-N,
// workers at a time, and adds them to ours. Every other one makes a blocked
// mount attempt first, so that it leaves counters, a denied-syscall entry,
// an event_sent entry and series that must expire.
func churn(t *testing.T, ours *churned, prefix string, n, workers int) {
	t.Helper()
	attempt := built(t, "attempt")
	cids := t.TempDir()
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
				cidfile := filepath.Join(cids, name)
				args := []string{"run", "--rm", "--name", name, "--cidfile", cidfile, "--network", "none", "--pull", "never",
					"-v", attempt + ":/attempt:ro", testenv.Image}
				if i%2 == 0 {
					args = append(args, "true")
				} else {
					args = append(args, "/attempt", "mount")
				}
				out, err := exec.Command("docker", args...).CombinedOutput()
				// The id is written at create: a container that failed later
				// may still have left state.
				id, _ := os.ReadFile(cidfile)
				ours.add(strings.TrimSpace(string(id)), name)
				if err != nil {
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

// settleLimit bounds how long the state of removed containers may stay:
// --collector.security.expiry (5s here) plus a resync (15s), or two resyncs
// for a stray tracked_cgroups entry, two cAdvisor reconcile passes (15s
// each), --collector.resources.restarts-retention (5s here); with margin for
// a busy host.
const settleLimit = 2 * time.Minute

// settle waits until nothing is left of the containers removed by now: no
// series names one of this test's containers, no BPF map entry whose cgroup
// was already gone at the start is left, and the exporter tracks no more
// containers than exist. Entries of other engineers' cgroups removed later
// are left to the next settle. It returns the first and the last snapshot.
func (e *exporter) settle(t *testing.T, ours *churned, what string) (first, last snapshot) {
	t.Helper()
	began := time.Now()
	first = e.snapshot(t, ours)
	t.Logf("%s, at once: %v", what, first)
	for s := first; ; s = e.snapshot(t, ours) {
		left := 0
		for k := range s.dead {
			if first.dead[k] {
				left++
			}
		}
		if s.ours == 0 && left == 0 && int(s.tracked) <= s.live {
			t.Logf("%s, after %s: %v", what, time.Since(began).Round(time.Second), s)
			return first, s
		}
		if time.Since(began) > settleLimit {
			t.Errorf("%s: state of removed containers left after %s: %d series of this test's containers %v, %d map entries of cgroups removed before, %v tracked for %d container cgroups; %v",
				what, settleLimit, s.ours, s.oursBy, left, s.tracked, s.live, s)
			return first, s
		}
		time.Sleep(2500 * time.Millisecond)
	}
}

// keepsGrowing reports whether every round grew a figure over the round
// before by more than floor: a leak grows with each round of churn, noise
// (the GC's heap target, pools) does not.
func keepsGrowing(rounds []float64, floor float64) bool {
	for i := 1; i < len(rounds); i++ {
		if rounds[i] <= rounds[i-1]+floor {
			return false
		}
	}
	return len(rounds) > 1
}

// TestChurn runs 510 short-lived containers past the exporter in three
// rounds, with a 5s series expiry and restart-counter retention, whatever
// other containers on the host do meanwhile. After each round, within
// settleLimit, exactly nothing is left of the removed containers: no series
// names one, no per-container BPF map entry of a removed cgroup is left, the
// exporter tracks no more containers than exist, and there are no more
// series about no container than before. Goroutines and open files (counted
// without cAdvisor's per existing cgroup and the runtime connections') and
// RSS may move by what exists once or what is in flight, but must not grow
// round after round. At the end, the Go runtime's SIGQUIT dump shows no
// more of cAdvisor's per-cgroup goroutines than there are cgroups.
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn: minutes of container starts")
	}
	testenv.Docker(t)
	if _, err := exec.LookPath("ss"); err != nil {
		t.Fatal("ss (iproute2) is needed to count the exporter's runtime connections")
	}
	e := start(t, nil, "--collector.security.expiry=5s", "--collector.resources.restarts-retention=5s", "--log.level=warn")
	e.metrics()
	ours := &churned{ids: map[string]bool{}, names: map[string]bool{}}
	prefix := fmt.Sprintf("bw-hard-churn-%d", os.Getpid())

	// A warm-up fills the pools, caches and goroutines that exist once.
	churn(t, ours, prefix+"-warm", 20, 4)
	_, base := e.settle(t, ours, "warm-up")
	measured := []totals{e.totals(t)}
	t.Logf("before churn: %v", measured[0])

	const rounds, perRound = 3, 170
	began := time.Now()
	var churning time.Duration
	var lastRound time.Time
	seen := 0 // series of this test's containers right after a round
	for r := 1; r <= rounds; r++ {
		roundBegan := time.Now()
		churn(t, ours, fmt.Sprintf("%s-r%d", prefix, r), perRound, 6)
		lastRound = time.Now()
		churning += time.Since(roundBegan)
		first, s := e.settle(t, ours, fmt.Sprintf("round %d", r))
		seen = max(seen, first.ours)
		v := e.totals(t)
		measured = append(measured, v)
		t.Logf("round %d: %v", r, v)
		if s.host > base.host {
			var grew []string
			for name, n := range s.hostBy {
				if n > base.hostBy[name] {
					grew = append(grew, fmt.Sprintf("%s %d -> %d", name, base.hostBy[name], n))
				}
			}
			t.Errorf("round %d: series about no container: %d before, %d after; grown: %v", r, base.host, s.host, grew)
		}
	}
	t.Logf("churn: %d containers started and removed in %s (%.1f/s), %s with settling",
		rounds*perRound, churning.Round(time.Second), float64(rounds*perRound)/churning.Seconds(), time.Since(began).Round(time.Second))

	if seen == 0 {
		t.Error("no series named a container of this test right after a round: nothing was checked")
	}
	expired := e.metrics().value(t, "breakwater_series_expired_total", nil)
	t.Logf("breakwater_series_expired_total = %v", expired)
	if expired < rounds*perRound {
		t.Errorf("breakwater_series_expired_total = %v, want at least the %d churned containers", expired, rounds*perRound)
	}
	var goroutines, fds, rss []float64
	for _, v := range measured {
		goroutines, fds, rss = append(goroutines, v.goroutines), append(fds, v.fds), append(rss, v.rss)
	}
	if keepsGrowing(goroutines, 0) {
		t.Errorf("goroutines grew every round: %v", goroutines)
	}
	if keepsGrowing(fds, 0) {
		t.Errorf("open fds grew every round: %v", fds)
	}
	if keepsGrowing(rss, 1<<20) {
		t.Errorf("RSS grew by over 1MiB every round: %v MiB", mib(rss))
	}

	// The goroutines of removed containers, exactly: cAdvisor keeps one per
	// cgroup it samples and nothing else per container, so after two
	// reconcile passes more than one per existing cgroup is a leak.
	time.Sleep(time.Until(lastRound.Add(2*resources.DefaultReconcileInterval + 5*time.Second)))
	housekeeping, before, after := e.housekeepingAtExit(t)
	t.Logf("at exit: %d cAdvisor housekeeping goroutines for %d cgroups (%d just after)", housekeeping, len(before), len(after))
	if housekeeping > max(len(before), len(after)) {
		t.Errorf("cAdvisor kept %d housekeeping goroutines for %d cgroups (%d just after): the rest sample removed containers",
			housekeeping, len(before), len(after))
	}
}

func mib(b []float64) []string {
	out := make([]string, len(b))
	for i, v := range b {
		out[i] = fmt.Sprintf("%.1f", v/(1<<20))
	}
	return out
}
