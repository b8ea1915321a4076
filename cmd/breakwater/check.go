package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/collectors/security"
	"github.com/breakwater/breakwater/exporter/identity"
)

// check prints what this kernel offers breakwater and what coverage follows.
// It exits 0 when the baseline works, 1 when security counting cannot run.
func check(w io.Writer) int {
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
		fmt.Fprintf(w, "  %-22s %s\n", name, state)
	}
	fmt.Fprintln(w, "kernel features:")
	probe("raw tracepoints", features.HaveProgramType(ebpf.RawTracepoint))
	probe("ring buffer", features.HaveMapType(ebpf.RingBuf))
	probe("per-CPU hash", features.HaveMapType(ebpf.PerCPUHash))
	probe("kprobes (optional)", kprobeAttach())
	probe("BPF LSM (optional)", features.HaveProgramType(ebpf.LSM))

	fmt.Fprintln(w, "breakwater hooks:")
	p, err := bpf.Load(bpf.Options{MaxContainers: 16, CounterEntries: 64, Classes: security.Classes()})
	if err != nil {
		fmt.Fprintf(w, "  programs do not load: %v\n", err)
		ok = false
	} else {
		for _, h := range bpf.Hooks {
			var err error
			if !p.Attached(h.Program) {
				err = p.AttachErrors()[h.Program]
				ok = false
			}
			probe("raw_tp/"+h.Name, err)
		}
		p.Close()
	}

	fmt.Fprintln(w, "coverage:")
	if ok {
		fmt.Fprintf(w, "  full baseline: denied syscalls, namespace, mount and capability counters, exec capabilities,\n")
		fmt.Fprintf(w, "  and all %d escape techniques (%s).\n", len(security.Techniques), strings.Join(security.Techniques, ", "))
		fmt.Fprintln(w, "  optional hooks (kprobes, fentry, BPF LSM) are not needed and not used.")
		return 0
	}
	fmt.Fprintln(w, "  security counters unavailable; resource metrics (cAdvisor) still work.")
	if os.Geteuid() != 0 {
		fmt.Fprintln(w, "  not running as root: grant CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE (memlock on old kernels) and CAP_DAC_READ_SEARCH.")
	}
	return 1
}

// kprobeAttach tries to attach a trivial kprobe: kernels built without
// CONFIG_KPROBES load the program type but cannot attach it.
func kprobeAttach() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Kprobe,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.Kprobe("do_sys_openat2", prog, nil)
	if err != nil {
		return err
	}
	return l.Close()
}
