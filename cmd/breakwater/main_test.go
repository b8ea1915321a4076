package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/internal/testenv"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "breakwater")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBadInputFailsFast: unknown flags and malformed web configs stop the
// exporter before it loads anything, with the reason.
func TestBadInputFailsFast(t *testing.T) {
	bin := build(t)
	bad := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(bad, []byte("tls_server_config: {cert_file: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "web-missing-key.yml")
	if err := os.WriteFile(missing, []byte("tls_server_config:\n  cert_file: /nonexistent.crt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "unknown long flag '--no-such-flag'"},
		{[]string{"--collector.security.expiry=soon"}, `invalid duration "soon"`},
		{[]string{"--collector.security.event-interval=-1ms"}, "--collector.security.event-interval must not be negative, got -1ms"},
		{[]string{"--collector.security.max-containers=0"}, "--collector.security.max-containers must be positive, got 0"},
		{[]string{"--web.config.file=" + bad}, "invalid --web.config.file"},
		{[]string{"--web.config.file=" + missing}, "invalid --web.config.file"},
		{[]string{"--alertmanager.url=::not-a-url"}, `invalid URL`},
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, bin, tc.args...).CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("%v: exited 0", tc.args)
			continue
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit code 2", tc.args, err)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: output %q lacks %q", tc.args, out, tc.want)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("scraping %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServesAndDetaches starts the exporter, scrapes it, and stops it with
// SIGTERM: every program is attached while it runs and detached after.
func TestServesAndDetaches(t *testing.T) {
	testenv.RequireRoot(t)
	bin := build(t)
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "--web.listen-address="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	body := scrape(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`breakwater_build_info{`,
		`breakwater_bpf_program_attached{hook="sys_enter",program="sys_enter"} 1`,
		`breakwater_scrape_collector_success{collector="security"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	lintMetrics(t, body)
	progs := testenv.LinkedPrograms(t, cmd.Process.Pid)
	if len(progs) != len(bpf.Hooks) {
		t.Errorf("exporter holds %d BPF links, want one per hook (%d)", len(progs), len(bpf.Hooks))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	// The kernel frees programs after an RCU grace period, not at exit.
	var left []int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if left = testenv.StillLoaded(t, progs); len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("programs %v still loaded after SIGTERM", left)
	}
	if pins, _ := filepath.Glob("/sys/fs/bpf/*breakwater*"); len(pins) > 0 {
		t.Errorf("pinned objects left: %v", pins)
	}
}

// TestWithoutBPFPrivilegesItServesTheRest runs the exporter as an
// unprivileged user: the security collector fails with an error naming the
// capabilities it needs, and the exporter keeps serving.
func TestWithoutBPFPrivilegesItServesTheRest(t *testing.T) {
	testenv.RequireRoot(t)
	// A directory the unprivileged user can reach.
	dir, err := os.MkdirTemp("", "bw-unpriv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "breakwater")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := testenv.FreeAddr(t)
	logf := filepath.Join(t.TempDir(), "log")
	log, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
		bin, "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	body := scrape(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`breakwater_scrape_collector_success{collector="security"} 0`,
		`breakwater_bpf_program_attached{hook="sys_exit",program="sys_exit"} 0`,
		`breakwater_build_info{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	b, _ := os.ReadFile(logf)
	if !strings.Contains(string(b), "CAP_BPF") {
		t.Errorf("log does not name the missing capability:\n%s", b)
	}
}

// TestCheckReportsEveryHook runs `breakwater check` on this kernel.
func TestCheckReportsEveryHook(t *testing.T) {
	testenv.RequireRoot(t)
	out, err := exec.Command(build(t), "check").CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{"BTF:           yes", "raw_tp/sys_enter             usable", "raw_tp/sys_exit              usable",
		"tp_btf/sched_process_exec    usable", "tp_btf/cgroup_mkdir          usable", "tp_btf/task_newtask          usable",
		"tp_btf/cgroup_attach_task    usable", "tp_btf/cap_capable           usable", "ia32 emulation               enabled",
		"the kernel's own, from cap_capable", "docker                       reached", "containerd                   reached",
		"all 10 escape techniques"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// lintMetrics runs the pinned `promtool check metrics` on an exposition.
// cAdvisor's own names are kept as cAdvisor spells them (queries written for
// kubelet depend on them), so its two known findings are allowed.
func lintMetrics(t *testing.T, body string) {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, _ := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || strings.HasPrefix(line, "cadvisor_version_info ") || strings.HasPrefix(line, "container_memory_failcnt ") {
			continue
		}
		t.Errorf("promtool check metrics: %s", line)
	}
}
