package resources

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/testenv"
)

// One embedded cAdvisor per test binary: its factory registry is global and
// starting it walks every cgroup.
var (
	sharedOnce sync.Once
	shared     *Collector
	sharedErr  error
	sharedRes  *identity.Resolver
)

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func sharedCollector(t *testing.T) *Collector {
	t.Helper()
	testenv.Docker(t)
	sharedOnce.Do(func() {
		// cAdvisor's own rescan at its most eager, so that every test here
		// runs with whatever the collector does about it (see
		// TestChurnLeavesNothing).
		if sharedErr = flag.Set("global_housekeeping_interval", "1ms"); sharedErr != nil {
			return
		}
		sharedRes = identity.NewResolver(testLogger(), identity.Options{})
		shared, sharedErr = New(testLogger(), sharedRes, Options{HousekeepingInterval: time.Second, DockerEvents: true,
			ReconcileInterval: 500 * time.Millisecond})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// asCollector registers a breakwater collector with a real registry.
type asCollector struct{ c *Collector }

func (a asCollector) Describe(chan<- *prometheus.Desc) {}
func (a asCollector) Collect(ch chan<- prometheus.Metric) {
	if err := a.c.Update(ch); err != nil {
		panic(err)
	}
}

// gather scrapes the collector through a prometheus.Registry, which also
// checks that every family has consistent labels.
func gather(t *testing.T, c *Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(asCollector{c})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// find returns the sample of family with the given labels, if any.
func find(mfs map[string]*dto.MetricFamily, family string, want map[string]string) (*dto.Metric, bool) {
	for _, m := range mfs[family].GetMetric() {
		l := labels(m)
		match := true
		for k, v := range want {
			if l[k] != v {
				match = false
				break
			}
		}
		if match {
			return m, true
		}
	}
	return nil, false
}

// eventually polls until check succeeds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, msg := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not reached within %v: %s", what, d, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestMemoryNearLimit(t *testing.T) {
	c := sharedCollector(t)
	// tmpfs pages are charged to the cgroup and cannot be reclaimed without
	// swap (--memory-swap = --memory), so the working set stays put.
	id := testenv.Container(t, "bw-res-mem", []string{"--memory", "64m", "--memory-swap", "64m", "--shm-size", "64m"},
		"sh", "-c", "head -c 60m /dev/zero > /dev/shm/fill && sleep 300")
	want := map[string]string{"name": "bw-res-mem", "container_id": id, "image": testenv.Image, "id": "/docker/" + id}
	var ratio float64
	eventually(t, 45*time.Second, "working set >= 90% of limit", func() (bool, string) {
		mfs := gather(t, c)
		ws, ok1 := find(mfs, "container_memory_working_set_bytes", want)
		lim, ok2 := find(mfs, "container_spec_memory_limit_bytes", want)
		if !ok1 || !ok2 {
			return false, "no series with " + strconv.Quote(want["name"])
		}
		if value(lim) != 64<<20 {
			t.Fatalf("container_spec_memory_limit_bytes = %v, want %d", value(lim), 64<<20)
		}
		ratio = value(ws) / value(lim)
		return ratio >= 0.9, "ratio " + strconv.FormatFloat(ratio, 'f', 3, 64)
	})
	t.Logf("working set / limit = %.3f", ratio)
	if ratio > 1.0 {
		t.Errorf("working set above the limit: %.3f", ratio)
	}
}

func TestNoMemoryLimitIsZero(t *testing.T) {
	c := sharedCollector(t)
	id := testenv.Container(t, "bw-res-nolimit", nil, "sleep", "300")
	eventually(t, 30*time.Second, "limit series", func() (bool, string) {
		m, ok := find(gather(t, c), "container_spec_memory_limit_bytes", map[string]string{"name": "bw-res-nolimit", "container_id": id})
		if !ok {
			return false, "no series"
		}
		if v := value(m); v != 0 {
			t.Fatalf("container_spec_memory_limit_bytes without a limit = %v, want 0", v)
		}
		return true, ""
	})
}

func TestKubernetesLabels(t *testing.T) {
	c := sharedCollector(t)
	id := testenv.Container(t, "bw-res-k8s", []string{
		"--label", "io.kubernetes.pod.namespace=ns1",
		"--label", "io.kubernetes.pod.name=pod1",
		"--label", "io.kubernetes.container.name=c1",
	}, "sleep", "300")
	want := map[string]string{"container_id": id, "name": "bw-res-k8s", "namespace": "ns1", "pod": "pod1", "container": "c1"}
	eventually(t, 30*time.Second, "identity labels", func() (bool, string) {
		_, ok := find(gather(t, c), "container_memory_working_set_bytes", want)
		return ok, "no working set series with the CRI labels"
	})
}

func TestNonContainerCgroupsOff(t *testing.T) {
	c := sharedCollector(t)
	testenv.Container(t, "bw-res-filter", nil, "sleep", "300")
	eventually(t, 30*time.Second, "a container series", func() (bool, string) {
		_, ok := find(gather(t, c), "container_start_time_seconds", map[string]string{"name": "bw-res-filter"})
		return ok, ""
	})
	mfs := gather(t, c)
	for _, m := range mfs["container_start_time_seconds"].GetMetric() {
		l := labels(m)
		if _, ok := identity.ContainerIDFromCgroupPath(l["id"]); !ok || l["container_id"] == "" {
			t.Errorf("non-container cgroup exported: %v", l)
		}
	}
	for _, fam := range []string{"machine_cpu_cores", "machine_memory_bytes"} {
		if len(mfs[fam].GetMetric()) == 0 || value(mfs[fam].GetMetric()[0]) <= 0 {
			t.Errorf("machine metric %s missing or zero", fam)
		}
	}
	// Off by default: the network and disk sets are not collected.
	for _, fam := range []string{"container_network_receive_bytes_total", "container_fs_reads_total", "container_cpu_load_average_10s"} {
		if _, ok := mfs[fam]; ok {
			t.Errorf("%s exported although its metric set is off", fam)
		}
	}
}

func TestCPUBurner(t *testing.T) {
	c := sharedCollector(t)
	burn := testenv.Container(t, "bw-res-cpu", nil, "sh", "-c", "while :; do :; done")
	idle := testenv.Container(t, "bw-res-idle", nil, "sleep", "300")
	sample := func(id string) (v float64, at time.Time, ok bool) {
		m, ok := find(gather(t, c), "container_cpu_usage_seconds_total", map[string]string{"container_id": id})
		if !ok {
			return 0, time.Time{}, false
		}
		return value(m), time.UnixMilli(m.GetTimestampMs()), true
	}
	rate := func(id string) float64 {
		t.Helper()
		var v0 float64
		var t0 time.Time
		eventually(t, 30*time.Second, "cpu series of "+id[:12], func() (bool, string) {
			var ok bool
			v0, t0, ok = sample(id)
			return ok, ""
		})
		time.Sleep(6 * time.Second)
		v1, t1, _ := sample(id)
		if !t1.After(t0) {
			t.Fatalf("no new cpu sample in 6s (housekeeping 1s)")
		}
		return (v1 - v0) / t1.Sub(t0).Seconds()
	}
	br, ir := rate(burn), rate(idle)
	t.Logf("cpu rate: burner %.3f cores, idle %.4f cores", br, ir)
	// Two cores shared with other work: the burner gets a good part of one.
	if br < 0.2 || br > 2.05 {
		t.Errorf("burner cpu rate %.3f cores, want between 0.2 and 2", br)
	}
	if ir > 0.05 {
		t.Errorf("idle container cpu rate %.3f cores, want ~0", ir)
	}
}

func restartCount(t *testing.T, id string) float64 {
	n, err := strconv.Atoi(testenv.Run(t, "docker", "inspect", "-f", "{{.RestartCount}}", id))
	if err != nil {
		t.Fatal(err)
	}
	return float64(n)
}

func restartsOf(t *testing.T, c *Collector, name string) (float64, bool) {
	m, ok := find(gather(t, c), "breakwater_container_restarts_total", map[string]string{"name": name})
	if !ok {
		return 0, false
	}
	if _, has := labels(m)["container_id"]; has {
		t.Fatalf("restarts carry container_id: %v", labels(m))
	}
	return value(m), true
}

// inotifyMkdirs calls created for every cgroup made under dir of the unified
// hierarchy, the way the security collector forwards BPF cgroup_mkdir
// events, until the test ends. The cgroup id is read as the event is read
// (0 if the cgroup is gone by then); BPF has it from the kernel.
func inotifyMkdirs(t *testing.T, rel string, created func(path string, id uint64)) {
	t.Helper()
	root, err := identity.UnifiedRoot()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Join(root, rel), unix.IN_CREATE|unix.IN_ONLYDIR); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done; unix.Close(fd) })
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100); n <= 0 {
				continue
			}
			n, err := unix.Read(fd, buf)
			if err != nil || n <= 0 {
				continue
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				for len(name) > 0 && name[len(name)-1] == 0 {
					name = name[:len(name)-1]
				}
				if ev.Mask&unix.IN_ISDIR != 0 {
					p := filepath.Join(rel, string(name))
					id, _ := identity.CgroupID(root, p)
					created(p, id)
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
}

// TestRestartsMatchDocker runs a container that exits every second under
// --restart=always, with both sources of starts active (Docker events and
// cgroup creation as BPF reports it), and compares the counter with
// Docker's own RestartCount: a start counted twice or missed shows. Docker
// counts a restart when it schedules it, before the back-off delay, so its
// count may lead ours by the one start still to come.
func TestRestartsMatchDocker(t *testing.T) {
	c := sharedCollector(t)
	inotifyMkdirs(t, "/docker", c.CgroupCreated)
	id := testenv.Container(t, "bw-res-restart", []string{"--restart=always"}, "sh", "-c", "sleep 1; exit 1")
	time.Sleep(14 * time.Second)
	testenv.Run(t, "docker", "update", "--restart=no", id)
	time.Sleep(2 * time.Second) // the last start's events arrive
	got, ok := restartsOf(t, c, "bw-res-restart")
	want := restartCount(t, id)
	t.Logf("breakwater_container_restarts_total = %v, Docker RestartCount = %v", got, want)
	if !ok || want < 3 || got < want-1 || got > want+1 {
		t.Fatalf("restarts = %v (series %v), Docker RestartCount = %v", got, ok, want)
	}
}

// TestRestartsFromCgroupCreationOnly counts with cgroup creation alone, as
// with BPF on and Docker events off.
func TestRestartsFromCgroupCreationOnly(t *testing.T) {
	testenv.Docker(t)
	r := newRestarts(testLogger(), identity.NewResolver(nil, identity.Options{}), 0)
	r.seed(context.Background())
	inotifyMkdirs(t, "/docker", r.cgroupCreated)
	id := testenv.Container(t, "bw-res-restart-bpf", []string{"--restart=always"}, "sh", "-c", "sleep 1; exit 1")
	time.Sleep(12 * time.Second)
	testenv.Run(t, "docker", "update", "--restart=no", id)
	time.Sleep(2 * time.Second)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(restartsOnly{r})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		m[mf.GetName()] = mf
	}
	s, ok := find(m, "breakwater_container_restarts_total", map[string]string{"name": "bw-res-restart-bpf", "image": testenv.Image})
	want := restartCount(t, id)
	if !ok || want < 3 || value(s) < want-1 || value(s) > want+1 {
		t.Fatalf("restarts from cgroup creation = %v (series %v), Docker RestartCount = %v", value(s), ok, want)
	}
	t.Logf("cgroup-creation-only restarts = %v, Docker RestartCount = %v", value(s), want)
}

type restartsOnly struct{ r *restarts }

func (restartsOnly) Describe(chan<- *prometheus.Desc)      {}
func (o restartsOnly) Collect(ch chan<- prometheus.Metric) { o.r.collect(ch) }

// TestOOMKillsAreTheKernels: container_oom_events_total is the kernel's
// count of OOM kills in the container's memory cgroup, exactly, whatever
// /dev/kmsg holds (the hardening suite runs it without CAP_SYSLOG).
func TestOOMKillsAreTheKernels(t *testing.T) {
	c := sharedCollector(t)
	id := testenv.Container(t, "bw-res-oom", []string{"--memory", "32m", "--memory-swap", "32m"},
		"sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; sleep 300")
	kernel := func() uint64 {
		ooms, err := newOOMKills()
		if err != nil {
			t.Fatal(err)
		}
		n, err := ooms.count(filepath.Join(ooms.root, "docker", id))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	want := map[string]string{"name": "bw-res-oom", "container_id": id}
	eventually(t, 45*time.Second, "the OOM kill counted", func() (bool, string) {
		m, ok := find(gather(t, c), "container_oom_events_total", want)
		if !ok {
			return false, "no series"
		}
		k := kernel()
		return k == 1 && value(m) == float64(k), fmt.Sprintf("container_oom_events_total = %v, kernel %d", value(m), k)
	})
}
