package security

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/testenv"
)

// eventLog is a sink keeping every escape event, to say on failure which
// process made the attempts a container was charged with.
type eventLog struct {
	mu     sync.Mutex
	events []escape.Event
}

func (l *eventLog) Push(e escape.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// of describes the first n events of the container named name.
func (l *eventLog) of(name string, n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		if e.Identity.Name == name && len(out) < n {
			out = append(out, fmt.Sprintf("event: %s %s/%s by %s (pid %d) %s +%d", e.Syscall, e.Technique, e.Result, e.Comm, e.PID, e.Detail, e.Repeats))
		}
	}
	return out
}

// evasion is one way an attacker who read breakwater's source tries to
// make an attempt uncounted or mislabelled, run in a real container.
type evasion struct {
	name    string
	priv    bool     // the privileged equivalent, where the attempt succeeds
	as      string   // where the attempt binary sits in the container (/attempt)
	runArgs []string // more docker run arguments
	args    []string
	want    map[string]float64 // technique/result -> count, exactly
	denied  map[string]float64 // syscall/errno/reason -> count, exactly (nil: not checked)
	caps    map[string]float64 // capability/result/scope -> count, at least (nil: not checked)
	lost    string             // a lost reason that must have grown
	// heldCaps are breakwater_container_capabilities, exactly (nil: not checked).
	heldCaps map[string]float64
	// seen is a technique whose result the attempt's own report decides
	// (want is then that technique and result, once).
	seen string
}

// TestEvasions runs every evasion the issues list against one exporter:
// each must land on the exact technique and result of the plain attempt.
func TestEvasions(t *testing.T) {
	testenv.RequireRoot(t)
	events := &eventLog{}
	r := newCollector(t, Config{}, events)
	runEvasions(t, r, events, evasionCases(t))
}

// TestOlderKernelPaths runs a cross-section of the evasions the way
// breakwater runs on kernels between 5.17 and 6.13: no bpf_rdonly_cast
// (registers and files read by probe reads), no cap_capable tracepoint
// (capability checks inferred), no io_uring tracepoints. The results are
// the same.
func TestOlderKernelPaths(t *testing.T) {
	testenv.RequireRoot(t)
	events := &eventLog{}
	r := newCollector(t, Config{Without: []string{"bpf_rdonly_cast", "cap_capable", "io_uring_submit_req", "io_uring_complete"}}, events)
	var cases []evasion
	for _, c := range evasionCases(t) {
		switch c.name {
		case "comm-runc-init", "reexec-proc-self-exe", "cgroup-out", "ia32-unshare", "ia32-open-core", "clone3-enosys",
			"epoll-regular-file", "relative-core", "dirfd-core-priv", "padded-core", "long-release-agent", "socket-renamed",
			"socket-junk-after-len", "benign":
			c.caps = nil // inferred, not the kernel's checks
			cases = append(cases, c)
		}
	}
	runEvasions(t, r, events, cases)
}

func evasionCases(t *testing.T) []evasion {
	dev := hostBlockDevice(t)
	mknodWant := map[string]float64{"block_device/allowed": 1}
	if f, err := os.Open("/dev/vda"); err == nil {
		f.Close()
		mknodWant["block_device/allowed"] = 2 // the open succeeds too, and is named by its inode
	}
	sock := []string{"-v", "/var/run/docker.sock:/tmp/api.sock"}
	unconfinedPaths := []string{"--security-opt", "systempaths=unconfined"}
	empty := map[string]float64{}
	cases := []evasion{
		// Names chosen inside the container exempt nothing.
		{name: "comm-runc-init", priv: true, args: []string{"as-comm", "runc:[2:INIT]", "mount"}, want: map[string]float64{"mount/allowed": 1}},
		{name: "comm-exe", priv: true, args: []string{"as-comm", "exe", "mount"}, want: map[string]float64{"mount/allowed": 1}},
		{name: "comm-crun", priv: true, args: []string{"as-comm", "crun", "chroot"}, want: map[string]float64{"chroot/allowed": 1}},
		{name: "entrypoint-runc", priv: true, as: "/runc", args: []string{"mount"}, want: map[string]float64{"mount/allowed": 1}},
		{name: "entrypoint-exe", priv: true, as: "/exe", args: []string{"mount"}, want: map[string]float64{"mount/allowed": 1}},
		{name: "reexec-proc-self-exe", priv: true, args: []string{"reexec", "mount"}, want: map[string]float64{"mount/allowed": 1}},
		// Cgroups a container makes or moves to change nothing (the first
		// mount is the cgroup2 hierarchy the move needs).
		{name: "cgroup-sub", priv: true, args: []string{"cgroup-move", "sub", "mount"}, want: map[string]float64{"mount/allowed": 2}},
		{name: "cgroup-out", priv: true, args: []string{"cgroup-move", "out", "mount"}, want: map[string]float64{"mount/allowed": 2}},
		{name: "cgroup-lookalike-sub", priv: true, args: []string{"lookalike-sub", "mount"}, want: map[string]float64{"mount/allowed": 2}},
		{name: "cgroup-flood", priv: true, args: []string{"subcgroup-flood", "40"}, want: map[string]float64{"mount/allowed": 1}, lost: "subcgroup_limit"},
		// Every syscall ABI: ia32 through int $0x80.
		{name: "ia32-unshare", args: []string{"ia32-unshare"}, want: map[string]float64{"namespace/blocked": 1},
			denied: map[string]float64{"unshare/EPERM/seccomp": 1}},
		{name: "ia32-mount", priv: true, args: []string{"ia32-mount"}, want: map[string]float64{"mount/allowed": 1}},
		{name: "ia32-open-core", args: []string{"ia32-open-core"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "ia32-socketcall", args: []string{"ia32-socketcall"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		{name: "ia32-benign", args: []string{"ia32-benign"}, want: empty, denied: empty},
		// Seccomp refusals, whatever errno; kernel refusals told apart.
		{name: "clone3-enosys", args: []string{"clone3-user"}, want: map[string]float64{"namespace/blocked": 1},
			denied: map[string]float64{"clone3/ENOSYS/seccomp": 1}},
		{name: "unimplemented", priv: true, args: []string{"nosys"}, want: empty, denied: empty},
		{name: "epoll-regular-file", args: []string{"epoll-file"}, want: empty, denied: map[string]float64{"epoll_ctl/EPERM/kernel": 1}},
		{name: "seccomp-mount-no-cap-check", args: []string{"mount"}, want: map[string]float64{"mount/blocked": 1},
			denied: map[string]float64{"mount/EPERM/seccomp": 1}, caps: map[string]float64{}},
		// Files by what they are, whatever the path.
		{name: "relative-core", args: []string{"relative-core"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "relative-core-priv", priv: true, runArgs: []string{"--security-opt", "systempaths=unconfined"}, args: []string{"relative-core"}, want: map[string]float64{"proc_sys_write/allowed": 1}},
		{name: "dirfd-core", args: []string{"dirfd-core"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "dirfd-core-priv", priv: true, runArgs: []string{"--security-opt", "systempaths=unconfined"}, args: []string{"dirfd-core"}, want: map[string]float64{"proc_sys_write/allowed": 1}},
		{name: "dotted-core", args: []string{"dotted-core"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "padded-core", args: []string{"padded-core"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "symlink-core-priv", priv: true, runArgs: []string{"--security-opt", "systempaths=unconfined"}, args: []string{"symlink-core"}, want: map[string]float64{"proc_sys_write/allowed": 1}},
		// The mode makes sure the write-open is refused before it calls creat: two attempts.
		{name: "creat-core", args: []string{"creat-core"}, want: map[string]float64{"proc_sys_write/blocked": 2}},
		{name: "long-release-agent", priv: true, args: []string{"long-release"}, want: map[string]float64{"mount/allowed": 1, "cgroup_release_agent/allowed": 1}},
		{name: "mknod-other-name", priv: true, args: []string{"mknod-other", dev}, want: mknodWant},
		// Allowed or refused depends on how the runtime mounts /proc and
		// /sys: the result must be what the attempt saw.
		{name: "sysrq-trigger", priv: true, runArgs: unconfinedPaths, args: []string{"open-write", "/proc/sysrq-trigger"}, seen: "proc_sys_write"},
		{name: "sysrq-trigger-dotted", args: []string{"open-write", "/proc/self/../sysrq-trigger"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "binfmt-register", priv: true, args: []string{"binfmt-register"}, want: map[string]float64{"mount/allowed": 1, "proc_sys_write/allowed": 1}},
		{name: "uevent-helper", priv: true, runArgs: unconfinedPaths, args: []string{"open-write", "/sys/kernel/uevent_helper"}, seen: "kernel_interface"},
		// Runtime sockets by who listens, the name by its length.
		{name: "socket-renamed", runArgs: sock, args: []string{"connect", "/tmp/api.sock"}, want: map[string]float64{"runtime_socket/allowed": 1}},
		{name: "socket-junk-after-len", args: []string{"connect", "/var/run/docker.sock"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		{name: "tcp-runtime-port", args: []string{"tcp", "2375"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		{name: "tcp-other-port", args: []string{"tcp", "8080"}, want: empty},
		// io_uring is not a side door.
		{name: "uring-open-core", priv: true, runArgs: []string{"--security-opt", "systempaths=unconfined"}, args: []string{"uring-open-core"}, want: map[string]float64{"proc_sys_write/allowed": 1}},
		{name: "uring-skip-success", priv: true, runArgs: unconfinedPaths, args: []string{"uring-skip", "/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/allowed": 1}},
		{name: "uring-flood-control", args: []string{"uring-flood", "/proc/sys/kernel/core_pattern", "0"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "uring-flood", args: []string{"uring-flood", "/proc/sys/kernel/core_pattern", "400"}, want: map[string]float64{"proc_sys_write/blocked": 1}, lost: "uring_budget"},
		{name: "uring-connect", priv: true, runArgs: sock, args: []string{"uring-connect", "/tmp/api.sock"}, want: map[string]float64{"runtime_socket/allowed": 1}},
		// Capability checks inside a user namespace are namespaced.
		{name: "userns-mount", priv: true, args: []string{"userns-mount"}, want: map[string]float64{"namespace/allowed": 1, "mount/allowed": 1},
			caps: map[string]float64{"CAP_SYS_ADMIN/granted/namespace": 1}},
		// Only capabilities that reach the host are a container's.
		{name: "userns-exec-caps", runArgs: []string{"--security-opt", "seccomp=unconfined"}, args: []string{"userns-exec"},
			want: map[string]float64{"namespace/allowed": 1}, heldCaps: map[string]float64{}},
		// Every door to a technique's object, each next to its control.
		{name: "proc-mem-other", args: []string{"proc-mem", "other"}, want: map[string]float64{"ptrace/allowed": 1}},
		{name: "proc-mem-self", args: []string{"proc-mem", "self"}, want: empty},
		{name: "traceme-setregs", args: []string{"traceme-setregs"}, want: map[string]float64{"ptrace/allowed": 1}},
		{name: "sysctl-deeper", args: []string{"open-write", "/proc/sys/kernel/usermodehelper/bset"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "sysctl-deeper-priv", priv: true, runArgs: unconfinedPaths, args: []string{"open-write", "/proc/sys/kernel/usermodehelper/bset"}, seen: "proc_sys_write"},
		{name: "sysctl-not-kernel", args: []string{"open-write", "/proc/sys/net/core/somaxconn"}, want: empty},
		{name: "connect-wide-addrlen", args: []string{"connect-widelen", "/var/run/docker.sock"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		{name: "tcp-fastopen-sendto", args: []string{"tcp-fastopen", "2375"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		{name: "tcp-fastopen-sendmsg", args: []string{"tcp-fastopen", "2375", "sendmsg"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		{name: "tcp-fastopen-sendmmsg", args: []string{"tcp-fastopen", "2375", "sendmmsg"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		{name: "tcp-fastopen-other-port", args: []string{"tcp-fastopen", "8080"}, want: empty},
		{name: "ia32-sendto-fastopen", args: []string{"ia32-sendto-fastopen", "2375"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		// Arguments the program cannot read when the call enters.
		{name: "ia32-socketcall-unfaulted", args: []string{"ia32-socketcall-unfaulted"}, want: map[string]float64{"runtime_socket/blocked": 1}},
		{name: "ia32-socketcall-unmapped", args: []string{"ia32-socketcall-unmapped"}, want: empty, lost: "args_unreadable"},
		// Refused opens through procfs's magic links resolve as the kernel walks them.
		{name: "self-root", args: []string{"open-write", "/proc/self/root/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "thread-self-root", args: []string{"open-write", "/proc/thread-self/root/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "pid-root", args: []string{"open-write", "/proc/1/root/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "self-root-dotdot", args: []string{"open-write", "/proc/self/root/../proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "self-root-nested", args: []string{"open-write", "/proc/self/root/proc/self/root/proc/thread-self/root/proc/self/root/proc/sys/kernel/core_pattern"},
			want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "self-root-control", args: []string{"open-write", "/proc/self/root/tmp/core_pattern"}, want: empty},
		{name: "self-fd-reopen", args: []string{"fd-reopen", "/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "dev-fd-reopen", args: []string{"fd-reopen", "/proc/sys/kernel/core_pattern", "dev"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "self-fd-reopen-control", args: []string{"fd-reopen", "/proc/sys/net/core/somaxconn"}, want: empty},
		{name: "root-dirfd-self-root", args: []string{"openat-write", "/", "proc/self/root/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "task-dirfd-root", args: []string{"openat-write", "/proc/self", "root/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "thread-root", args: []string{"open-write", "/proc/self/task/1/root/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "other-task-cwd-unfollowed", args: []string{"openat-write", "/proc/self", "task/1/cwd/x"}, want: empty},
		{name: "dev-fd-parent", args: []string{"open-write", "/dev/fd/../root/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "self-cwd", args: []string{"cwd-link"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "openat2-in-root", args: []string{"in-root"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		// Names that only look like a technique's object.
		{name: "release-agent-lookalike", args: []string{"open-write", "/tmp/release_agent"}, want: empty},
		{name: "release-agent-cgroup-path", args: []string{"open-write", "/sys/fs/cgroup/memory/release_agent"}, want: map[string]float64{"cgroup_release_agent/blocked": 1}},
		{name: "block-device-name-nothing-there", args: []string{"open-write", "/dev/sdcard0"}, want: empty},
		{name: "ptrace-kill-after-traceme", args: []string{"traceme-kill"}, want: map[string]float64{"ptrace/allowed": 1}},
		{name: "high-bits-mount", priv: true, args: []string{"high-bits", "mount"}, want: map[string]float64{"mount/allowed": 1}},
		{name: "high-bits-open", args: []string{"high-bits", "open", "/proc/sys/kernel/core_pattern"}, want: map[string]float64{"proc_sys_write/blocked": 1}},
		{name: "above-table-priv", priv: true, args: []string{"above-table"}, want: empty, denied: empty},
		// Benign neighbours move nothing.
		{name: "benign", priv: true, args: []string{"benign"}, want: empty, denied: empty, caps: map[string]float64{}},
	}
	return cases
}

func runEvasions(t *testing.T, r *registry, events *eventLog, cases []evasion) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lostBefore := 0.0
			if tc.lost != "" {
				lostBefore = r.series(t, "breakwater_bpf_events_lost_total", map[string]string{"reason": tc.lost}, "reason")[tc.lost]
			}
			name := "bw-ev-" + tc.name
			runArgs := append([]string{}, tc.runArgs...)
			if tc.priv {
				runArgs = append(runArgs, testenv.PrivilegedArgs()...)
			}
			out := runAttemptAs(t, name, tc.as, runArgs, tc.args...)
			t.Log(out)
			if tc.seen != "" {
				result := "allowed"
				if strings.Contains(out, ": blocked") {
					result = "blocked"
				}
				tc.want = map[string]float64{tc.seen + "/" + result: 1}
			}
			match := map[string]string{"name": name, "image": testenv.Image}
			if got := r.series(t, "breakwater_escape_attempts_total", match, "technique", "result"); !equal(got, tc.want) {
				t.Errorf("escape attempts = %v, want %v", got, tc.want)
				// Who made them, and what the kernel lost, say why.
				for _, line := range events.of(name, 12) {
					t.Log(line)
				}
				t.Logf("lost: %v", r.series(t, "breakwater_bpf_events_lost_total", nil, "reason"))
			}
			if tc.denied != nil {
				if got := r.series(t, "breakwater_syscalls_denied_total", match, "syscall", "errno", "reason"); !equal(got, tc.denied) {
					t.Errorf("denied syscalls = %v, want %v", got, tc.denied)
				}
			}
			if tc.caps != nil {
				got := r.series(t, "breakwater_capability_checks_total", match, "capability", "result", "scope")
				if len(tc.caps) == 0 && len(got) != 0 {
					t.Errorf("capability checks = %v, want none", got)
				}
				for k, v := range tc.caps {
					if got[k] < v {
						t.Errorf("capability checks = %v, want %s at least %v", got, k, v)
					}
				}
			}
			if tc.heldCaps != nil {
				if got := r.series(t, "breakwater_container_capabilities", match, "capability"); !equal(got, tc.heldCaps) {
					t.Errorf("container capabilities = %v, want %v", got, tc.heldCaps)
				}
			}
			if tc.lost != "" {
				if after := r.series(t, "breakwater_bpf_events_lost_total", map[string]string{"reason": tc.lost}, "reason")[tc.lost]; after <= lostBefore {
					t.Errorf("breakwater_bpf_events_lost_total{reason=%q} stayed at %v", tc.lost, after)
				}
			}
		})
	}
	t.Run("lookalike-is-no-container", func(t *testing.T) {
		t.Helper()
		got := r.series(t, "breakwater_escape_attempts_total", map[string]string{"container_id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, "technique")
		if len(got) != 0 {
			t.Errorf("a sub-cgroup named like a container became one: %v", got)
		}
	})
}

// TestAttributionForGood: a container's process that the host (or any
// helper acting for it) moves out of its container's cgroup, into another
// container's, or whose container cgroup is removed under it while it
// runs, stays its container's: its next attempt is counted there, exactly.
func TestAttributionForGood(t *testing.T) {
	testenv.RequireRoot(t)
	r := newCollector(t, Config{Expiry: 3 * time.Second, ResyncInterval: 200 * time.Millisecond}, nil)
	bin := attempt(t)
	other := "bw-ev-ag-other"
	_ = exec.Command("docker", "rm", "-f", other).Run()
	if out, err := exec.Command("docker", "run", "-d", "--name", other, "--pull", "never", "--network", "none",
		testenv.Image, "sleep", "60").CombinedOutput(); err != nil {
		t.Fatalf("docker run %s: %v\n%s", other, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", other).Run() })
	for _, tc := range []string{"moved-out", "moved-into-other", "cgroup-removed"} {
		t.Run(tc, func(t *testing.T) {
			name := "bw-ev-ag-" + tc
			_ = exec.Command("docker", "rm", "-f", name).Run()
			args := append([]string{"run", "-d", "--name", name, "--pull", "never", "--network", "none", "-v", bin + ":/attempt:ro"},
				testenv.PrivilegedArgs()...)
			args = append(args, testenv.Image, "/attempt", "later", "7", "mount")
			if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
				t.Fatalf("docker run: %v\n%s", err, out)
			}
			t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
			pid := containerPID(t, name)
			own := cgroupDir(t, pid)
			// The collector has the container and its name (its exec'd
			// capabilities are a series) before anything moves.
			waitFor(t, func() bool {
				return len(r.series(t, "breakwater_container_capabilities", map[string]string{"name": name}, "capability")) > 0
			}, "the collector to name "+name)
			var dst string
			switch tc {
			case "moved-into-other":
				dst = cgroupDir(t, containerPID(t, other))
			default:
				dst = filepath.Join(unifiedRoot(t), "bw-ev-ag-"+tc)
				if err := os.Mkdir(dst, 0o755); err != nil && !os.IsExist(err) {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Remove(dst) })
			}
			if err := os.WriteFile(filepath.Join(dst, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
				t.Fatalf("moving %d to %s: %v", pid, dst, err)
			}
			if tc == "cgroup-removed" {
				if err := os.Remove(own); err != nil {
					t.Fatalf("removing the container's cgroup %s: %v", own, err)
				}
				time.Sleep(4 * time.Second) // past the expiry of a removed container
			}
			if out, err := exec.Command("docker", "wait", name).CombinedOutput(); err != nil {
				t.Fatalf("docker wait: %v\n%s", err, out)
			}
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Log(strings.TrimSpace(string(out)))
			want := map[string]float64{"mount/allowed": 1}
			if got := r.series(t, "breakwater_escape_attempts_total", map[string]string{"name": name}, "technique", "result"); !equal(got, want) {
				t.Errorf("escape attempts = %v, want %v; all: %v", got, want,
					r.series(t, "breakwater_escape_attempts_total", nil, "container_id", "name", "technique", "result"))
			}
			if got := r.series(t, "breakwater_escape_attempts_total", map[string]string{"name": other}, "technique", "result"); len(got) != 0 {
				t.Errorf("the other container was charged: %v", got)
			}
		})
	}
}

func containerPID(t *testing.T, name string) int {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", name).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid == 0 {
		t.Fatalf("pid of %s: %q", name, out)
	}
	return pid
}

// unifiedRoot is where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup,
// or /sys/fs/cgroup/unified on a hybrid host).
func unifiedRoot(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 9 && strings.Contains(line, " - cgroup2 ") {
			return f[4]
		}
	}
	t.Skip("no cgroup v2 hierarchy mounted")
	return ""
}

// cgroupDir is the unified-hierarchy cgroup directory of a process.
func cgroupDir(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(unifiedRoot(t), rest)
		}
	}
	t.Fatalf("no cgroup v2 line for %d: %s", pid, b)
	return ""
}

// TestAbstractSocketOfARuntime: a runtime process (here a host process
// named like containerd's shim) listening on an abstract socket, which has
// no file: a connect to it counts by who listens.
func TestAbstractSocketOfARuntime(t *testing.T) {
	testenv.RequireRoot(t)
	r := newCollector(t, Config{ResyncInterval: 200 * time.Millisecond}, nil)
	bin := attempt(t)
	name := fmt.Sprintf("bw-shim-%d", os.Getpid())
	shim := exec.Command(bin, "as-comm", "containerd-shim", "listen-abstract", name, "60")
	if err := shim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shim.Process.Kill(); _ = shim.Wait() })
	time.Sleep(time.Second) // a resync names it a runtime process
	out := runAttemptAs(t, "bw-ev-abstract", "", []string{"--network", "host"}, "connect-abstract", name)
	t.Log(out)
	if got := r.series(t, "breakwater_escape_attempts_total", map[string]string{"name": "bw-ev-abstract"}, "technique", "result"); !equal(got, map[string]float64{"runtime_socket/allowed": 1}) {
		t.Errorf("connect to a runtime's abstract socket = %v, want runtime_socket/allowed 1", got)
	}
}

// TestInferredCapabilities: without the cap_capable tracepoint the
// capability counters come from the results of the calls that need them,
// and the exporter says so.
func TestInferredCapabilities(t *testing.T) {
	testenv.RequireRoot(t)
	r := newCollector(t, Config{Without: []string{"cap_capable"}}, nil)
	if got := r.series(t, "breakwater_capability_checks_inferred", nil); got[""] != 1 {
		t.Errorf("breakwater_capability_checks_inferred = %v, want 1", got)
	}
	runAttempt(t, "bw-ev-inferred", testenv.PrivilegedArgs(), "mount")
	runAttempt(t, "bw-ev-inferred-seccomp", nil, "mount")
	// The mount and the umount after it.
	if got := r.series(t, "breakwater_capability_checks_total", map[string]string{"name": "bw-ev-inferred"}, "capability", "result", "scope"); !equal(got, map[string]float64{"CAP_SYS_ADMIN/granted/host": 2}) {
		t.Errorf("inferred checks of an allowed mount and umount = %v, want CAP_SYS_ADMIN/granted/host 2", got)
	}
	// A call the seccomp filter refused checked no capability.
	if got := r.series(t, "breakwater_capability_checks_total", map[string]string{"name": "bw-ev-inferred-seccomp"}, "capability"); len(got) != 0 {
		t.Errorf("inferred checks of a seccomp-refused mount = %v, want none", got)
	}
}

// TestDockerExec: what docker exec sets up is the runtime's; what it runs
// is the container's.
func TestDockerExec(t *testing.T) {
	testenv.RequireRoot(t)
	r := newCollector(t, Config{}, nil)
	name := "bw-ev-exec"
	bin := attempt(t)
	id := testenv.Container(t, name, append(testenv.PrivilegedArgs(), "-v", bin+":/attempt:ro"), "sleep", "600")
	_ = id
	testenv.Run(t, "docker", "exec", name, "sh", "-c", "ls / >/dev/null && cat /etc/passwd >/dev/null")
	match := map[string]string{"name": name}
	for _, metric := range []string{"breakwater_escape_attempts_total", "breakwater_mount_operations_total",
		"breakwater_namespace_operations_total", "breakwater_syscalls_denied_total"} {
		if got := r.series(t, metric, match, "technique", "operation", "syscall"); len(got) != 0 {
			t.Errorf("ordinary docker exec moved %s: %v", metric, got)
		}
	}
	testenv.Run(t, "docker", "exec", name, "/attempt", "mount")
	if got := r.series(t, "breakwater_escape_attempts_total", match, "technique", "result"); !equal(got, map[string]float64{"mount/allowed": 1}) {
		t.Errorf("an attempt through docker exec = %v, want mount/allowed 1", got)
	}
}

// TestLookalikeFloodDegradesVisibly fills the container map with host
// directories that merely look like container cgroups: the overflow is
// counted, the look-alikes (no runtime knows them) are evicted at the next
// resync, and a real container started afterwards is counted exactly.
func TestLookalikeFloodDegradesVisibly(t *testing.T) {
	testenv.RequireRoot(t)
	r := newCollector(t, Config{MaxContainers: 8, ResyncInterval: 300 * time.Millisecond, LookalikeGrace: time.Millisecond}, nil)
	base := filepath.Join(r.c.root, fmt.Sprintf("bw-lookalike-%d.slice", os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			_ = os.Remove(made[i])
		}
		_ = os.Remove(base)
	})
	for i := 0; i < 20; i++ {
		dir := filepath.Join(base, fmt.Sprintf("docker-%064x.scope", 0xb00000+i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, dir)
	}
	waitFor(t, func() bool {
		return r.series(t, "breakwater_bpf_events_lost_total", map[string]string{"reason": "container_limit"}, "reason")["container_limit"] > 0
	}, "the flood to overflow the container map")
	waitFor(t, func() bool { return r.series(t, "breakwater_cgroups_evicted_total", nil)[""] >= 8 }, "the look-alikes to be evicted")
	runAttempt(t, "bw-ev-after-flood", nil, "mount")
	got := r.series(t, "breakwater_escape_attempts_total", map[string]string{"name": "bw-ev-after-flood"}, "technique", "result")
	if !equal(got, map[string]float64{"mount/blocked": 1}) {
		t.Errorf("a container started after the flood = %v, want mount/blocked 1", got)
	}
}

// runAttemptAs runs the attempt binary in a fresh container from the path
// as (default /attempt) and waits for it.
func runAttemptAs(t *testing.T, name, as string, runArgs []string, args ...string) string {
	t.Helper()
	if as == "" {
		as = "/attempt"
	}
	bin := attempt(t)
	_ = exec.Command("docker", "rm", "-f", name).Run()
	full := []string{"run", "--name", name, "--pull", "never", "-v", bin + ":" + as + ":ro"}
	if !strings.Contains(strings.Join(runArgs, " "), "--network") {
		full = append(full, "--network", "none")
	}
	full = append(full, runArgs...)
	full = append(full, testenv.Image, as)
	full = append(full, args...)
	out, err := exec.Command("docker", full...).CombinedOutput()
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestRuntimeReexecutesItself plays a runtime on the host the way runc 1.1
// runs one. runc run moves its init into the container's cgroup while the
// init re-executes itself from a sealed memfd copy; that execution is still
// the runtime's set-up (its chroot and unshare are not the container's),
// the first one in the container's own mount namespace is not. runc exec
// enters the container's namespaces before its cgroup: there a memfd
// executable (an attacker's, planted where docker exec looks) is the
// container's at once.
func TestRuntimeReexecutesItself(t *testing.T) {
	testenv.RequireRoot(t)
	r := newCollector(t, Config{LookalikeGrace: time.Hour}, nil)
	for i, mode := range []string{"stay", "join"} {
		t.Run(mode, func(t *testing.T) {
			playRuntimeInit(t, mode, i, func() *registry { return r })
		})
	}
}

// TestRuntimeMidSetUpAtStart starts breakwater while a runtime's init is
// already in its container's cgroup, before its set-up: no move is seen,
// so where the init came from decides. Still in its host parent's mount
// namespace it is the runtime's; in a mount namespace of its own (as runc
// exec's, or any process of the container) it is the container's. The same
// holds for a task whose move left no record.
func TestRuntimeMidSetUpAtStart(t *testing.T) {
	testenv.RequireRoot(t)
	for i, mode := range []string{"stay", "join"} {
		t.Run(mode, func(t *testing.T) {
			playRuntimeInit(t, mode, 2+i, func() *registry {
				return newCollector(t, Config{LookalikeGrace: time.Hour}, nil)
			})
		})
	}
}

// playRuntimeInit runs evade's runtime-init in mode, moves it into a
// container-looking cgroup, gets the collector from collector (after the
// move), lets the init go on and checks only the container's chroot counts.
func playRuntimeInit(t *testing.T, mode string, n int, collector func() *registry) {
	t.Helper()
	bin := attempt(t)
	id := fmt.Sprintf("%064x", uint64(0xbe0000000+os.Getpid()*8+n))
	root, err := identity.UnifiedRoot()
	if err != nil {
		t.Fatal(err)
	}
	slice := filepath.Join(root, fmt.Sprintf("bw-runtime-%d.slice", os.Getpid()))
	dir := filepath.Join(slice, "docker-"+id+".scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(dir); _ = os.Remove(slice) })
	cmd := exec.Command(bin, "runtime-init", mode, "chroot")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("runtime-init: %q, %v", line, err)
	}
	// The runtime's parent moves its init, as runc's cgroup manager does.
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := collector()
	_, _ = stdin.Write([]byte("go\n"))
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("runtime-init %s: %v\n%s", mode, err, rest)
	}
	t.Log(strings.TrimSpace(string(rest)))
	want := map[string]float64{"chroot/allowed": 1}
	match := map[string]string{"container_id": id}
	waitFor(t, func() bool {
		return len(r.series(t, "breakwater_escape_attempts_total", match, "technique")) > 0
	}, "the container's chroot to be counted")
	if got := r.series(t, "breakwater_escape_attempts_total", match, "technique", "result"); !equal(got, want) {
		t.Errorf("escape attempts = %v, want %v", got, want)
	}
}
