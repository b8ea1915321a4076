package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/collectors/security"
	"github.com/breakwater/breakwater/exporter/alertpush"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/ia32"
)

// ia32ProbeCommand is the hidden command `check` runs as a child to make
// one ia32 syscall.
const ia32ProbeCommand = "ia32-probe"

// check prints what this kernel offers breakwater and what coverage follows.
// It exits 0 when the baseline works, 1 when security counting cannot run.
func check(w io.Writer, resolver *identity.Resolver, stateDir string) int {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	fmt.Fprintf(w, "kernel:        %s %s\n", unix.ByteSliceToString(uts.Release[:]), unix.ByteSliceToString(uts.Machine[:]))

	ok := true
	if _, err := btf.LoadKernelSpec(); err != nil {
		fmt.Fprintf(w, "BTF:           missing (%v): CO-RE programs cannot load\n", err)
		ok = false
	} else {
		fmt.Fprintln(w, "BTF:           yes (/sys/kernel/btf/vmlinux)")
	}

	root, err := identity.UnifiedRoot()
	switch {
	case err != nil:
		fmt.Fprintf(w, "cgroups:       no cgroup v2 hierarchy (%v): containers cannot be attributed\n", err)
		ok = false
	case root == "/sys/fs/cgroup":
		fmt.Fprintf(w, "cgroups:       v2 (unified at %s)\n", root)
	default:
		fmt.Fprintf(w, "cgroups:       hybrid v1+v2 (unified at %s); attribution needs the runtime to create unified cgroups\n", root)
	}

	probe := func(name string, err error) {
		state := "usable"
		if err != nil {
			state = "not available (" + strings.TrimSpace(err.Error()) + ")"
		}
		fmt.Fprintf(w, "  %-28s %s\n", name, state)
	}
	fmt.Fprintln(w, "kernel features:")
	probe("raw tracepoints", features.HaveProgramType(ebpf.RawTracepoint))
	probe("task storage", features.HaveMapType(ebpf.TaskStorage))
	probe("ring buffer", features.HaveMapType(ebpf.RingBuf))
	probe("bpf_loop", features.HaveProgramHelper(ebpf.RawTracepoint, 181))
	if runtime.GOARCH == "amd64" {
		self, _ := os.Executable()
		switch enabled, err := ia32.Enabled(self, ia32ProbeCommand); {
		case err != nil:
			fmt.Fprintf(w, "  %-28s unknown (%v)\n", "ia32 emulation", err)
		case enabled:
			fmt.Fprintf(w, "  %-28s enabled: 32-bit syscalls (int 0x80) run, and are counted with the i386 table\n", "ia32 emulation")
		default:
			fmt.Fprintf(w, "  %-28s disabled: 32-bit syscalls cannot run here\n", "ia32 emulation")
		}
	}

	fmt.Fprintln(w, "breakwater hooks:")
	descs, _ := security.Descs()
	p, err := bpf.Load(bpf.Options{MaxContainers: 16, Descs: descs})
	var fallbacks []string
	if err != nil {
		fmt.Fprintf(w, "  programs do not load: %v\n", err)
		ok = false
	} else {
		for _, h := range bpf.Hooks {
			err := p.AttachErrors()[h.Program]
			probe(h.Kind+"/"+h.Name, err)
			switch {
			case err != nil && h.Optional():
				fallbacks = append(fallbacks, h.Name+": "+h.Fallback)
			case err != nil:
				ok = false
			}
		}
		if p.CapabilitiesInferred() {
			fmt.Fprintln(w, "  capability checks:           inferred from syscall results (breakwater_capability_checks_inferred 1)")
		} else {
			fmt.Fprintln(w, "  capability checks:           the kernel's own, from cap_capable (breakwater_capability_checks_inferred 0)")
		}
		p.Close()
	}

	fmt.Fprintln(w, "container runtimes:")
	reach := resolver.Reach(context.Background())
	for _, rt := range identity.Runtimes {
		fmt.Fprintf(w, "  %-28s %s\n", rt, reach[rt])
	}

	fmt.Fprintln(w, "state (--collector.security.profile-dir):")
	fmt.Fprintf(w, "  %-28s %s\n", "syscall profiles", security.CheckProfileState(stateDir))
	fmt.Fprintf(w, "  %-28s %s\n", "undelivered escape alerts", alertpush.CheckState(stateDir))

	fmt.Fprintln(w, "coverage:")
	if ok {
		fmt.Fprintf(w, "  denied syscalls (seccomp and kernel refusals), namespace, mount and capability counters,\n")
		fmt.Fprintf(w, "  exec capabilities, and all %d escape techniques (%s).\n", len(bpf.TechniqueByName), techniques())
		for _, f := range fallbacks {
			fmt.Fprintf(w, "  without %s\n", f)
		}
		fmt.Fprintln(w, "  kprobes, fentry and BPF LSM are not needed and not used.")
		return 0
	}
	fmt.Fprintln(w, "  security counters unavailable; resource metrics (cAdvisor) still work.")
	if os.Geteuid() != 0 {
		fmt.Fprintln(w, "  not running as root: grant CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE (memlock on old kernels) and CAP_DAC_READ_SEARCH.")
	}
	return 1
}

func techniques() string {
	var out []string
	for _, n := range bpf.TechniqueNames {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}
