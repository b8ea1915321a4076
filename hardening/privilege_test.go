package hardening

import (
	"fmt"
	"github.com/breakwater/breakwater/bpf"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/breakwater/breakwater/internal/testenv"
)

// leastCaps is the capability set docs/hardening.md documents for a
// non-root exporter, by setpriv name. With it the exporter runs as nobody
// plus a supplementary group that may use the Docker socket.
var leastCaps = []struct {
	name string
	bit  uint
}{
	{"bpf", unix.CAP_BPF},         // maps and programs
	{"perfmon", unix.CAP_PERFMON}, // tracing programs, raw tracepoints
	{"syslog", unix.CAP_SYSLOG},   // /proc/kallsyms: the kernel's unaudited capability checks
}

// nobody is the uid and gid the least-privilege exporter runs as.
const nobody = 65534

// setpriv returns the wrapper that runs the exporter as nobody with exactly
// caps (ambient, so that they survive the exec of a non-root program) and
// the supplementary groups.
func setpriv(caps []string, groups []int) []string {
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	g := "--clear-groups"
	if len(groups) > 0 {
		var s []string
		for _, gid := range groups {
			s = append(s, strconv.Itoa(gid))
		}
		g = "--groups=" + strings.Join(s, ",")
	}
	return []string{"setpriv", "--reuid=" + strconv.Itoa(nobody), "--regid=" + strconv.Itoa(nobody), g,
		"--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set, "--no-new-privs"}
}

// memoryOOMKills reads the kernel's OOM kill count of a Docker container's
// memory cgroup (v1 on the hybrid hierarchy, v2 otherwise).
func memoryOOMKills(t *testing.T, id string) int {
	t.Helper()
	for _, f := range []struct{ path, key string }{
		{"/sys/fs/cgroup/memory/docker/" + id + "/memory.oom_control", "oom_kill"},
		{"/sys/fs/cgroup/docker/" + id + "/memory.events", "oom_kill"},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, f.key+" "); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
	}
	t.Fatalf("no memory cgroup for container %s", id)
	return 0
}

// TestLeastPrivilege runs the exporter as uid 65534 with only the documented
// capabilities and the docker group, and sees every part work: the BPF
// programs attach and count a real container's blocked mount, resource
// metrics carry the container's name, and cAdvisor reports the OOM kills of
// a container. Then it takes away each capability and the group in turn and
// checks that the exporter says what is missing and which part is blind.
func TestLeastPrivilege(t *testing.T) {
	testenv.Docker(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) runs the exporter with a reduced capability set")
	}
	grp, err := user.LookupGroup("docker")
	if err != nil {
		t.Fatalf("the docker group owns the Docker socket: %v", err)
	}
	dockerGID, _ := strconv.Atoi(grp.Gid)
	attempt := built(t, "attempt")

	victim := testenv.Container(t, "bw-hard-lp-victim", []string{"-v", attempt + ":/attempt:ro"},
		"sh", "-c", "while true; do /attempt mount >/dev/null; sleep 1; done")
	// 64 MiB into a 32 MiB container: killed by the kernel every two seconds.
	oom := testenv.Container(t, "bw-hard-lp-oom", []string{"--memory", "32m", "--memory-swap", "32m"},
		"sh", "-c", "while true; do dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; sleep 2; done")

	all := []string{}
	for _, c := range leastCaps {
		all = append(all, c.name)
	}
	without := func(c string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == c })
	}
	type check func(t *testing.T, e *exporter)
	victimAttempts := map[string]string{"container_id": victim, "technique": "mount", "result": "blocked"}
	securityBlind := func(capName string) check {
		return func(t *testing.T, e *exporter) {
			f := e.metrics()
			if v := f.value(t, "breakwater_scrape_collector_success", map[string]string{"collector": "security"}); v != 0 {
				t.Errorf(`breakwater_scrape_collector_success{collector="security"} = %v, want 0`, v)
			}
			if v, n := f.sum("breakwater_bpf_program_attached", nil); v != 0 || n != len(bpf.Hooks) {
				t.Errorf("breakwater_bpf_program_attached: %v of %d attached, want 0 of %d", v, n, len(bpf.Hooks))
			}
			if v := f.value(t, "breakwater_scrape_collector_success", map[string]string{"collector": "resources"}); v != 1 {
				t.Errorf("the resources collector failed too")
			}
			if log := e.logText(); !strings.Contains(log, "missing "+capName) || !strings.Contains(log, "security collector runs without BPF") {
				t.Errorf("the log does not say the security collector needs %s:\n%s", capName, log)
			} else {
				t.Logf("log: %s", firstLine(log, "security collector runs without BPF"))
			}
		}
	}
	for _, tc := range []struct {
		name   string
		caps   []string
		groups []int
		check  check
	}{
		{"documented set", all, []int{dockerGID}, func(t *testing.T, e *exporter) {
			f := e.metrics() // serving: setpriv has become the exporter
			st := procStatus(t, e.pid())
			want := uint64(0)
			for _, c := range leastCaps {
				want |= 1 << c.bit
			}
			if !strings.HasPrefix(st["Uid"], fmt.Sprintf("%d\t%d\t%d", nobody, nobody, nobody)) ||
				capMask(t, st["CapEff"]) != want || st["Groups"] != grp.Gid || st["NoNewPrivs"] != "1" {
				t.Fatalf("exporter runs as Uid %q Groups %q CapEff %s NoNewPrivs %s, want uid %d, group %s, CapEff %016x",
					st["Uid"], st["Groups"], st["CapEff"], st["NoNewPrivs"], nobody, grp.Gid, want)
			}
			t.Logf("exporter pid %d: Uid %s, Groups %s, CapEff %s, CapBnd %s", e.pid(), st["Uid"], st["Groups"], st["CapEff"], st["CapBnd"])

			for _, c := range []string{"security", "resources"} {
				if v := f.value(t, "breakwater_scrape_collector_success", map[string]string{"collector": c}); v != 1 {
					t.Errorf("collector %s failed", c)
				}
			}
			if v, n := f.sum("breakwater_bpf_program_attached", nil); v != float64(len(bpf.Hooks)) || n != len(bpf.Hooks) {
				t.Errorf("breakwater_bpf_program_attached: %v of %d attached", v, n)
			}
			// The victim tries a mount every second: the counter moves, under
			// the name only the Docker socket knows.
			named := map[string]string{"name": "bw-hard-lp-victim", "image": testenv.Image}
			for k, v := range victimAttempts {
				named[k] = v
			}
			first := waitFor(t, e, 30*time.Second, "breakwater_escape_attempts_total", named, func(v float64) bool { return v > 0 })
			moved := waitFor(t, e, 30*time.Second, "breakwater_escape_attempts_total", named, func(v float64) bool { return v > first })
			t.Logf("escape attempts of bw-hard-lp-victim: %v, then %v", first, moved)
			mem := waitFor(t, e, 60*time.Second, "container_memory_working_set_bytes", map[string]string{"name": "bw-hard-lp-victim", "container_id": victim}, func(v float64) bool { return v > 0 })
			t.Logf("container_memory_working_set_bytes{name=\"bw-hard-lp-victim\"} = %v", mem)
			kills := memoryOOMKills(t, oom)
			ooms := waitFor(t, e, 60*time.Second, "container_oom_events_total", map[string]string{"name": "bw-hard-lp-oom"}, func(v float64) bool { return v > 0 })
			t.Logf("container_oom_events_total{name=\"bw-hard-lp-oom\"} = %v (kernel: %d OOM kills so far)", ooms, kills)
			// The containerd socket (root:root 0660) stays closed: Docker
			// names the containers, and cAdvisor's raw cgroup handler serves
			// their resources (docs/hardening.md).
			for _, refused := range []string{"operation not permitted", "docker.sock: connect: permission denied"} {
				if l := firstLine(e.logText(), refused); l != "" {
					t.Errorf("refused with the documented set: %s", l)
				}
			}
		}},
		{"without CAP_BPF", without("bpf"), []int{dockerGID}, securityBlind("CAP_BPF")},
		{"without CAP_PERFMON", without("perfmon"), []int{dockerGID}, securityBlind("CAP_PERFMON")},
		{"without CAP_SYSLOG", without("syslog"), []int{dockerGID}, func(t *testing.T, e *exporter) {
			// OOM kills come from the memory cgroup's own counter, not
			// /dev/kmsg: they are counted all the same.
			match := map[string]string{"name": "bw-hard-lp-oom"}
			ooms := waitFor(t, e, 60*time.Second, "container_oom_events_total", match, func(v float64) bool { return v > 0 })
			t.Logf("container_oom_events_total = %v without CAP_SYSLOG (kernel: %d OOM kills so far)", ooms, memoryOOMKills(t, oom))
			// What it costs is the kernel symbols that tell the kernel's
			// own unaudited capability checks apart, and the exporter says so.
			const want = "kernel symbols hidden (CAP_SYSLOG)"
			if !strings.Contains(e.logText(), want) {
				t.Errorf("the log does not say the kernel symbols are hidden:\n%s", e.logText())
			}
			t.Logf("log: %s", firstLine(e.logText(), "kernel symbols"))
		}},
		{"without the docker group", all, nil, func(t *testing.T, e *exporter) {
			anon := map[string]string{"name": "", "image": ""}
			for k, v := range victimAttempts {
				anon[k] = v
			}
			waitFor(t, e, 30*time.Second, "breakwater_escape_attempts_total", anon, func(v float64) bool { return v > 0 })
			if v, n := e.metrics().sum("breakwater_escape_attempts_total", map[string]string{"name": "bw-hard-lp-victim"}); n != 0 {
				t.Errorf("named series (%v) without access to the Docker socket", v)
			}
			log := e.logText()
			if !strings.Contains(log, "container runtime unreachable") || !strings.Contains(log, "docker.sock: connect: permission denied") {
				t.Errorf("the log does not say the Docker socket is refused:\n%s", log)
			}
			t.Logf("log: %s", firstLine(log, "runtime=docker"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, setpriv(tc.caps, tc.groups))
			tc.check(t, e)
			if err := e.stop(); err != nil {
				t.Errorf("exit after SIGTERM: %v\n%s", err, e.logText())
			}
		})
	}
}

// waitFor scrapes until the sum of a metric's matching samples satisfies ok
// and returns it.
func waitFor(t *testing.T, e *exporter, d time.Duration, metric string, match map[string]string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, n := e.metrics().sum(metric, match)
		if n > 0 && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (%d series) after %s\n%s", metric, match, v, n, d, tail(e.logText(), 40))
		}
		time.Sleep(time.Second)
	}
}

func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
