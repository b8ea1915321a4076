// Package corpus is the security suite's escape corpus as data: the
// arguments of collectors/security/testdata/attempt.c for each case, what
// breakwater must count when the attempt runs as root with every capability
// and no seccomp filter (a privileged container, or a container-like cgroup
// in a throwaway VM), and the documented limits of the kernels breakwater is
// tested on. `make test-kernels` runs it on every kernel of the matrix; the
// Go security tests can take their privileged expectations from it.
package corpus

import "strings"

// Case is one attempt and what it must count.
type Case struct {
	Name string
	// Args are attempt's arguments: the technique first.
	Args []string
	// Want are the escape attempts counted for the container,
	// technique/result -> count, exactly. Empty: none at all.
	Want map[string]float64
	// ABIs are the binaries the case runs as: "amd64", "386" (gcc -m32:
	// every syscall through the i386 entry), "arm64". Nil means all three.
	ABIs []string
	// As is the path the binary runs from ("" is /attempt), for cases
	// about what the entrypoint is called.
	As string
}

// Runs reports whether the case runs as abi.
func (c Case) Runs(abi string) bool {
	if c.ABIs == nil {
		return true
	}
	for _, a := range c.ABIs {
		if a == abi {
			return true
		}
	}
	return false
}

func one(tr ...string) map[string]float64 {
	m := map[string]float64{}
	for _, k := range tr {
		m[k]++
	}
	return m
}

var (
	none   = map[string]float64{}
	native = []string{"amd64", "arm64"}
	x86    = []string{"amd64", "386"}
)

// RuntimeSocket is where a runtime's API socket listens while the cases
// run (a process named podman plays the runtime); Docker's well-known
// path has no listener.
const RuntimeSocket = "/run/podman/podman.sock"

// Cases are the corpus: the plain technique of each contract technique,
// the evasions an attacker who read breakwater's source would try, and
// benign controls that must move nothing. Connects to Docker's socket find
// no listener: they are refused, and counted so.
var Cases = []Case{
	// The contract's techniques, plain.
	{Name: "mount", Args: []string{"mount"}, Want: one("mount/allowed")},
	{Name: "namespace", Args: []string{"namespace"}, Want: one("namespace/allowed")},
	{Name: "chroot", Args: []string{"chroot"}, Want: one("chroot/allowed")},
	// pivot_root of / on an initramfs root is refused (EINVAL).
	{Name: "pivot_root", Args: []string{"pivot_root"}, Want: one("chroot/blocked")},
	{Name: "ptrace", Args: []string{"ptrace"}, Want: one("ptrace/allowed")},
	// Never load a module: the call gets as far as the bad fd.
	{Name: "kernel_module", Args: []string{"kernel_module"}, Want: one("kernel_module/blocked")},
	{Name: "kernel_interface", Args: []string{"kernel_interface"}, Want: one("kernel_interface/allowed")},
	{Name: "release_agent", Args: []string{"cgroup_release_agent"}, Want: one("mount/allowed", "cgroup_release_agent/allowed")},
	{Name: "proc_sys_write", Args: []string{"proc_sys_write"}, Want: one("proc_sys_write/allowed")},
	{Name: "runtime_socket", Args: []string{"runtime_socket"}, Want: one("runtime_socket/blocked")},

	// Names chosen inside the container exempt nothing.
	{Name: "comm-runc-init", Args: []string{"as-comm", "runc:[2:INIT]", "mount"}, Want: one("mount/allowed")},
	{Name: "comm-exe", Args: []string{"as-comm", "exe", "mount"}, Want: one("mount/allowed")},
	{Name: "entrypoint-runc", As: "/runc", Args: []string{"mount"}, Want: one("mount/allowed"), ABIs: native},
	{Name: "reexec-proc-self-exe", Args: []string{"reexec", "mount"}, Want: one("mount/allowed")},
	// Cgroups a container makes or moves to change nothing (the first
	// mount is the cgroup2 hierarchy the move needs).
	{Name: "cgroup-sub", Args: []string{"cgroup-move", "sub", "mount"}, Want: map[string]float64{"mount/allowed": 2}},
	{Name: "cgroup-out", Args: []string{"cgroup-move", "out", "mount"}, Want: map[string]float64{"mount/allowed": 2}},
	{Name: "cgroup-lookalike-sub", Args: []string{"lookalike-sub", "mount"}, Want: map[string]float64{"mount/allowed": 2}},
	// Every syscall ABI: ia32 through int $0x80 from a 64-bit binary (and
	// natively from the i386 one).
	{Name: "ia32-unshare", Args: []string{"ia32-unshare"}, Want: one("namespace/allowed"), ABIs: x86},
	{Name: "ia32-mount", Args: []string{"ia32-mount"}, Want: one("mount/allowed"), ABIs: x86},
	{Name: "ia32-open-core", Args: []string{"ia32-open-core"}, Want: one("proc_sys_write/allowed"), ABIs: x86},
	{Name: "ia32-socketcall", Args: []string{"ia32-socketcall"}, Want: one("runtime_socket/blocked"), ABIs: x86},
	{Name: "ia32-benign", Args: []string{"ia32-benign"}, Want: none, ABIs: x86},
	{Name: "clone3-user", Args: []string{"clone3-user"}, Want: one("namespace/allowed")},
	{Name: "unimplemented", Args: []string{"nosys"}, Want: none},
	{Name: "epoll-regular-file", Args: []string{"epoll-file"}, Want: none},
	// Files by what they are, whatever the path.
	{Name: "relative-core", Args: []string{"relative-core"}, Want: one("proc_sys_write/allowed")},
	{Name: "dirfd-core", Args: []string{"dirfd-core"}, Want: one("proc_sys_write/allowed")},
	{Name: "dotted-core", Args: []string{"dotted-core"}, Want: one("proc_sys_write/allowed")},
	{Name: "padded-core", Args: []string{"padded-core"}, Want: one("proc_sys_write/allowed")},
	{Name: "symlink-core", Args: []string{"symlink-core"}, Want: one("proc_sys_write/allowed")},
	{Name: "long-release-agent", Args: []string{"long-release"}, Want: one("mount/allowed", "cgroup_release_agent/allowed")},
	{Name: "sysrq-trigger", Args: []string{"open-write", "/proc/sysrq-trigger"}, Want: one("proc_sys_write/allowed")},
	{Name: "sysrq-trigger-dotted", Args: []string{"open-write", "/proc/self/../sysrq-trigger"}, Want: one("proc_sys_write/allowed")},
	// Runtime sockets by name and port.
	{Name: "socket-junk-after-len", Args: []string{"connect", "/var/run/docker.sock"}, Want: one("runtime_socket/blocked")},
	{Name: "runtime-socket-listening", Args: []string{"connect", RuntimeSocket}, Want: one("runtime_socket/allowed")},
	{Name: "tcp-runtime-port", Args: []string{"tcp", "2375"}, Want: one("runtime_socket/blocked")},
	{Name: "tcp-other-port", Args: []string{"tcp", "8080"}, Want: none},
	// io_uring is not a side door.
	{Name: "uring-open-core", Args: []string{"uring-open-core"}, Want: one("proc_sys_write/allowed")},
	{Name: "uring-connect", Args: []string{"uring-connect", RuntimeSocket}, Want: one("runtime_socket/allowed")},
	// Namespaced capability checks.
	{Name: "userns-mount", Args: []string{"userns-mount"}, Want: one("namespace/allowed", "mount/allowed")},
	{Name: "userns-exec", Args: []string{"userns-exec"}, Want: one("namespace/allowed")},
	// Benign neighbours move nothing.
	{Name: "benign", Args: []string{"benign"}, Want: none},
	{Name: "control", Args: []string{"control"}, Want: none},
}

// Limit is a documented gap of one kernel: what a case counts there
// instead of its Want. docs/kernels.md lists each one, with its Why.
type Limit struct {
	// Kernel is the major.minor release the limit applies to.
	Kernel string
	// Arch is "amd64" or "arm64"; "" is both.
	Arch string
	// Cases are the cases it changes; nil is every case.
	Cases []string
	// Got is what those cases count there (empty: nothing).
	Got map[string]float64
	// CheckFails says `breakwater check` exits non-zero there.
	CheckFails bool
	// Why is the limit as docs/kernels.md states it.
	Why string
}

// Limits are the documented limits of the tested kernels.
var Limits = []Limit{
	{
		Kernel: "5.10", Got: none, CheckFails: true,
		Why: "5.10 has no task storage (5.11) and no bpf_loop (5.17): the programs do not load, and no security counter runs",
	},
	{
		Kernel: "6.1", Cases: []string{"uring-open-core", "uring-connect"}, Got: none,
		Why: "6.1 has no io_uring_submit_req tracepoint: io_uring opens and connects go unclassified",
	},
}

// Kernel returns the major.minor of a kernel release ("6.1.0-50-cloud-amd64" -> "6.1").
func Kernel(release string) string {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return release
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	return parts[0] + "." + minor
}

// LimitOf returns the limit that applies to the case on a kernel release
// and architecture, or nil.
func LimitOf(release, arch, name string) *Limit {
	k := Kernel(release)
	for i, l := range Limits {
		if l.Kernel != k || (l.Arch != "" && l.Arch != arch) {
			continue
		}
		if l.Cases == nil {
			return &Limits[i]
		}
		for _, c := range l.Cases {
			if c == name {
				return &Limits[i]
			}
		}
	}
	return nil
}

// Expected returns what the case must count on a kernel release and
// architecture, and the limit that changed it from Want (nil if none).
func (c Case) Expected(release, arch string) (map[string]float64, *Limit) {
	if l := LimitOf(release, arch, c.Name); l != nil {
		return l.Got, l
	}
	return c.Want, nil
}
