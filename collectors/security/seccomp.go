package security

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"

	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/internal/syscalls"
)

// runtimeNeeds are the calls a container's runtime (runc, crun) and the
// first instants of any program make after the runtime installed the
// container's seccomp filter and before the container's code runs: a
// profile that refused them would stop the container from starting. They
// are in every exported profile; when a profile is learned under a filter,
// breakwater sees them anyway (the runtime's calls once its filter is in).
var runtimeNeeds = []string{
	"arch_prctl", "brk", "capget", "capset", "close", "close_range", "dup3", "epoll_create1", "epoll_ctl",
	"epoll_pwait", "execve", "execveat", "exit", "exit_group", "fcntl", "fstat", "futex", "getpid", "getppid",
	"getrandom", "gettid", "madvise", "mmap", "mprotect", "munmap", "nanosleep", "newfstatat", "openat", "pipe2",
	"prctl", "read", "rseq", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sched_yield", "set_robust_list",
	"set_tid_address", "setgid", "setgroups", "setuid", "sigaltstack", "tgkill", "write",
}

// seccompArch is the OCI / libseccomp name of each ABI breakwater names.
var seccompArch = map[string]string{
	"x86_64": "SCMP_ARCH_X86_64", "i386": "SCMP_ARCH_X86", "x32": "SCMP_ARCH_X32",
	"arm64": "SCMP_ARCH_AARCH64", "arm": "SCMP_ARCH_ARM",
}

// seccompProfile is the OCI runtime-spec / Docker seccomp profile format.
type seccompProfile struct {
	DefaultAction   string           `json:"defaultAction"`
	DefaultErrnoRet int              `json:"defaultErrnoRet"`
	Architectures   []string         `json:"architectures"`
	Syscalls        []seccompSyscall `json:"syscalls"`
}

type seccompSyscall struct {
	Names  []string `json:"names"`
	Action string   `json:"action"`
}

// SeccompProfile renders an image's profile as an allow-list: every call
// it was seen to make, on the ABIs it was seen to use, and nothing else
// (refused with EPERM). Usable as is with docker run --security-opt
// seccomp=FILE and as a Kubernetes Localhost profile.
func (pr profile) SeccompProfile(native string) ([]byte, error) {
	var names []string
	arches := []string{seccompArch[native]}
	for abi, calls := range pr.Syscalls {
		if len(calls) == 0 {
			continue
		}
		a, ok := seccompArch[abi]
		if !ok {
			return nil, fmt.Errorf("profile has calls of unknown ABI %q", abi)
		}
		if !slices.Contains(arches, a) {
			arches = append(arches, a)
		}
		names = append(names, calls...)
	}
	names = append(names, runtimeNeeds...)
	sort.Strings(names)
	names = slices.Compact(names)
	sort.Strings(arches[1:])
	return json.MarshalIndent(seccompProfile{
		DefaultAction:   "SCMP_ACT_ERRNO",
		DefaultErrnoRet: 1, // EPERM
		Architectures:   arches,
		Syscalls:        []seccompSyscall{{Names: names, Action: "SCMP_ACT_ALLOW"}},
	}, "", "  ")
}

// ExportProfile renders the seccomp profile learned for an image from the
// state in dir, as `breakwater profile` prints it. learning says whether
// the image is still learning (the profile may be incomplete).
func ExportProfile(dir, image string) (out []byte, learning bool, err error) {
	var f profileFile
	found, err := statefile.ReadOnly(dir).Load(ProfileFile, func(b []byte) error { return decodeProfiles(b, &f) })
	if err != nil {
		return nil, false, err
	}
	if !found {
		f.Profiles = map[string]*profile{}
	}
	p := &profiles{byImage: f.Profiles}
	pr, ok := p.get(image)
	if !ok {
		return nil, false, fmt.Errorf("no profile for image %q in %s (images: %v)", image, dir, p.images())
	}
	out, err = pr.SeccompProfile(nativeABI())
	return out, pr.Since.IsZero(), err
}

func nativeABI() string { return syscalls.Native.String() }

// ProfileHandler serves the learned profiles: /profiles lists them,
// /profiles/seccomp?image=IMAGE renders one as a seccomp profile.
func (c *Collector) ProfileHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/profiles", func(w http.ResponseWriter, r *http.Request) {
		type entry struct {
			Image    string   `json:"image"`
			Learning bool     `json:"learning"`
			Learned  Duration `json:"learned"`
			Syscalls int      `json:"syscalls"`
		}
		out := []entry{}
		for _, image := range c.profiles.images() {
			pr, _ := c.profiles.get(image)
			n := 0
			for _, calls := range pr.Syscalls {
				n += len(calls)
			}
			out = append(out, entry{image, pr.Since.IsZero(), pr.Learned, n})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("/profiles/seccomp", func(w http.ResponseWriter, r *http.Request) {
		image := r.URL.Query().Get("image")
		pr, ok := c.profiles.get(image)
		if !ok {
			http.Error(w, fmt.Sprintf("no profile for image %q", image), http.StatusNotFound)
			return
		}
		b, err := pr.SeccompProfile(nativeABI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if pr.Since.IsZero() {
			w.Header().Set("Warning", `199 breakwater "the image is still learning: the profile may lack calls it has not made yet"`)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	return mux
}
