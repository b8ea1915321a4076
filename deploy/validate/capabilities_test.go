package validate

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/breakwater/breakwater/internal/testenv"
)

// TestCapabilitySet runs the exporter as uid 0 with exactly the DaemonSet's
// capabilities (bounding set, no ambient or inheritable ones, no_new_privs
// as allowPrivilegeEscalation: false sets it) and proves that this is
// enough: the BPF programs attach, and an escape attempt of a real container
// is counted under its Docker name, which needs the runtime socket, the
// cgroup tree and /proc/<pid>/comm of other processes without
// CAP_DAC_READ_SEARCH or CAP_SYS_PTRACE, and the embedded cAdvisor reports
// the container's memory. Then it removes each capability the
// kernel needs and proves the exporter is blind without it.
func TestCapabilitySet(t *testing.T) {
	testenv.Docker(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) is needed to run the exporter with a reduced capability set")
	}
	ds := must(Only[*appsv1.DaemonSet](plainObjects(t)))(t)
	c := ds.Spec.Template.Spec.Containers[0]
	held := boundingSet(t)
	var granted []string
	for _, cp := range c.SecurityContext.Capabilities.Add {
		name := strings.ToLower(string(cp))
		if !held[name] {
			// This project's machines lack CAP_SYS_RESOURCE; on kernels from
			// 5.11 on BPF memory is charged to the memory cgroup instead of
			// RLIMIT_MEMLOCK, so the exporter does not need it here.
			t.Logf("capability %s is not in this test's bounding set; running without it", cp)
			continue
		}
		granted = append(granted, name)
	}
	bin := exporterBinary(t)

	const victim = "bw-deploy-victim"
	testenv.Container(t, victim, nil, "sh", "-c", "sleep 2; while true; do mount -t tmpfs none /mnt 2>/dev/null; sleep 1; done")

	without := func(c string) []string {
		return slices.DeleteFunc(slices.Clone(granted), func(g string) bool { return g == c })
	}
	for _, tc := range []struct {
		name  string
		caps  []string
		works bool
	}{
		{"daemonset set", granted, true},
		{"without BPF", without("bpf"), false},
		{"without PERFMON", without("perfmon"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.works && len(tc.caps) == len(granted) {
				t.Fatalf("the DaemonSet no longer asks for the capability this case removes")
			}
			addr := testenv.FreeAddr(t)
			args := []string{"--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"}
			if len(tc.caps) > 0 {
				args[2] += ",+" + strings.Join(tc.caps, ",+")
			}
			args = append(args, "--no-new-privs", bin)
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--web.listen-address=") {
					a = "--web.listen-address=" + addr
				}
				args = append(args, a)
			}
			args = append(args, "--runtime.docker-host=unix:///var/run/docker.sock")
			logs := startExporter(t, args)

			ident := `name="` + victim + `"`
			deadline := time.Now().Add(45 * time.Second)
			var body string
			for time.Now().Before(deadline) {
				time.Sleep(time.Second)
				body = scrape(addr)
				if body == "" {
					continue
				}
				if !tc.works {
					break
				}
				if sample(body, "breakwater_escape_attempts_total", ident, `technique="mount"`) > 0 &&
					sample(body, "container_memory_working_set_bytes", ident) > 0 {
					break
				}
			}
			if body == "" {
				t.Fatalf("exporter never served /metrics\n%s", logs())
			}
			attached := sample(body, "breakwater_bpf_program_attached", `program="sys_enter"`)
			success := sample(body, "breakwater_scrape_collector_success", `collector="security"`)
			attempts := sample(body, "breakwater_escape_attempts_total", ident, `technique="mount"`)
			memory := sample(body, "container_memory_working_set_bytes", ident)
			t.Logf("caps %v: sys_enter attached %v, security collector success %v, mount attempts of %s %v, its working set %v", tc.caps, attached, success, victim, attempts, memory)
			if tc.works {
				if attached != 1 || success != 1 || attempts <= 0 || memory <= 0 {
					var mem []string
					for l := range strings.Lines(body) {
						if strings.HasPrefix(l, "container_memory_working_set_bytes{") {
							mem = append(mem, l)
						}
					}
					t.Errorf("the DaemonSet's capabilities are not enough; working-set series:\n%s\nlog:\n%s", strings.Join(mem, ""), logs())
				}
			} else if attached == 1 || success == 1 {
				t.Errorf("the exporter works without this capability: drop it from the DaemonSet")
			}
		})
	}
}

// boundingSet is this process's capability bounding set, by lower-case name
// without the CAP_ prefix.
func boundingSet(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var mask uint64
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			mask, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	bits := map[string]int{"sys_resource": 24, "sys_admin": 21, "perfmon": 38, "bpf": 39, "dac_read_search": 2, "sys_ptrace": 19, "syslog": 34}
	held := map[string]bool{}
	for name, bit := range bits {
		held[name] = mask&(1<<bit) != 0
	}
	return held
}

// startExporter runs setpriv with args until the test ends and returns a
// function that yields its log so far.
func startExporter(t *testing.T, args []string) func() string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := filepath.Join(t.TempDir(), "breakwater.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "setpriv", args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		f.Close()
	})
	return func() string {
		b, _ := os.ReadFile(log)
		return string(b)
	}
}

func scrape(addr string) string {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var sb strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		sb.WriteString(sc.Text())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// sample sums the samples of metric whose label set contains every matcher
// (each `name="value"`); -1 when there is none.
func sample(body, metric string, matchers ...string) float64 {
	sum, found := 0.0, false
	for l := range strings.Lines(body) {
		rest, ok := strings.CutPrefix(l, metric+"{")
		if !ok {
			continue
		}
		end := strings.LastIndex(rest, "}")
		if end < 0 {
			continue
		}
		labels := "," + rest[:end] + ","
		if !allIn(labels, matchers) {
			continue
		}
		// The value, then cAdvisor's optional timestamp.
		fields := strings.Fields(rest[end+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		sum, found = sum+v, true
	}
	if !found {
		return -1
	}
	return sum
}

func allIn(labels string, matchers []string) bool {
	for _, m := range matchers {
		if !strings.Contains(labels, ","+m+",") {
			return false
		}
	}
	return true
}
