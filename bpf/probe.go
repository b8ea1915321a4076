package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/breakwater/breakwater/internal/syscalls"
)

// Hook is one attach point of the security programs.
type Hook struct {
	Program string // the BPF program's name
	Name    string // the tracepoint it attaches to
	Kind    string // "raw_tp" (a raw tracepoint) or "tp_btf" (a BTF-typed one)
	// Fallback is what breakwater does without an optional hook; empty
	// for the baseline, without which counting does not work.
	Fallback string
}

// Optional reports whether the baseline works without the hook.
func (h Hook) Optional() bool { return h.Fallback != "" }

// Hooks lists every program breakwater attaches, in attach order: task and
// cgroup tracking first, so that no syscall is seen of a task whose origin
// was missed.
var Hooks = []Hook{
	{Program: "cgroup_mkdir", Name: "cgroup_mkdir", Kind: "tp_btf"},
	{Program: "cgroup_rmdir", Name: "cgroup_rmdir", Kind: "tp_btf"},
	{Program: "task_newtask", Name: "task_newtask", Kind: "tp_btf"},
	{Program: "cgroup_attach_task", Name: "cgroup_attach_task", Kind: "tp_btf"},
	{Program: "sched_process_exec", Name: "sched_process_exec", Kind: "tp_btf"},
	{Program: "sched_process_exit", Name: "sched_process_exit", Kind: "tp_btf"},
	{Program: "cap_capable", Name: "cap_capable", Kind: "tp_btf",
		Fallback: "capability checks are inferred from the results of the syscalls that need them"},
	{Program: "io_uring_submit_req", Name: "io_uring_submit_req", Kind: "tp_btf",
		Fallback: "io_uring opens and connects are not classified (io_uring_setup is still counted)"},
	{Program: "io_uring_complete", Name: "io_uring_complete", Kind: "tp_btf",
		Fallback: "io_uring opens and connects are not classified (io_uring_setup is still counted)"},
	{Program: "sys_enter", Name: "sys_enter", Kind: "raw_tp"},
	{Program: "sys_exit", Name: "sys_exit", Kind: "raw_tp"},
}

// Options tune the programs before they load.
type Options struct {
	// CountHost counts processes outside containers too, as container 0.
	CountHost bool
	// MaxContainers bounds the per-container maps.
	MaxContainers uint32
	// DeniedEntries bounds the denied-syscall map (keys, not calls); 0
	// sizes it as MaxContainers times DeniedBudget.
	DeniedEntries uint32
	// DeniedBudget is the distinct (syscall, reason, errno) keys one
	// container may hold; 0 means DefaultDeniedBudget. Refused calls past
	// it count under syscall "other".
	DeniedBudget uint32
	// SubcgroupBudget is the sub-cgroups tracked for one container; 0
	// means 16.
	SubcgroupBudget uint32
	// Descs says what each syscall of each ABI means (see security.Table).
	Descs map[syscalls.ABI]map[uint32]SyscallDesc
	// EventInterval is the shortest gap between two escape events of one
	// container with the same syscall, technique and result; repeats
	// within it travel as a count with the next event. Zero sends every
	// attempt.
	EventInterval time.Duration
	// RuntimePorts are TCP ports of container runtime APIs (up to 4).
	RuntimePorts []uint16
	// Without names optional programs not to load, as on a kernel without
	// their tracepoints, and "bpf_rdonly_cast" to read kernel memory as
	// kernels before 6.2 must (tests of the fallbacks).
	Without []string
}

// uringBudget is the io_uring opens and connects one container may have
// in flight (uring_budget); more are counted as lost uring_budget.
const uringBudget = 256

// DefaultDeniedBudget holds a whole recon scan of a default seccomp
// profile (amicontained finds 61 refused syscalls in a default Docker
// container) with room for the kernel's own refusals.
const DefaultDeniedBudget = 128

// Probe is the loaded and attached security programs.
type Probe struct {
	coll        *ebpf.Collection
	objs        securityObjects
	links       map[string]link.Link
	attachEr    map[string]error
	reader      *ringbuf.Reader // escape events
	cgReader    *ringbuf.Reader // cgroup creation and removal
	capInferred bool
	noauditGap  string // why the kernel's unaudited capability checks are not told apart, or ""
}

// ErrNoBTF is returned when the kernel exposes no BTF, which CO-RE needs.
var ErrNoBTF = errors.New("kernel BTF not available at /sys/kernel/btf/vmlinux: breakwater's CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.11 or later)")

// Load loads the programs into the kernel and attaches every hook it can.
// It fails when the programs cannot load at all; a hook that cannot attach
// is reported by Attached and AttachErrors instead.
func Load(opts Options) (*Probe, error) {
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoBTF, err)
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. Without the
	// privilege to raise it the load below fails and names what is missing.
	memlockErr := rlimit.RemoveMemlock()
	spec, err := loadSecurity()
	if err != nil {
		return nil, fmt.Errorf("parsing embedded BPF object: %w", err)
	}
	p := &Probe{links: map[string]link.Link{}, attachEr: map[string]error{}}
	// An optional program whose tracepoint this kernel lacks cannot even
	// load: leave it out and say why.
	for _, h := range Hooks {
		if !h.Optional() {
			continue
		}
		reason := ""
		if contains(opts.Without, h.Program) {
			reason = "left out by configuration"
		} else if _, err := kernel.AnyTypeByName("btf_trace_" + h.Name); err != nil {
			reason = "this kernel has no " + h.Name + " tracepoint"
		}
		if reason != "" {
			delete(spec.Programs, h.Program)
			p.attachEr[h.Program] = fmt.Errorf("%s not loaded: %s; %s", h.Program, reason, h.Fallback)
		}
	}
	noaudit := NoauditRanges()
	switch {
	case len(noaudit) == 0:
		p.noauditGap = "kernel symbols hidden (CAP_SYSLOG)"
	case len(noaudit) > noauditRangeCount:
		p.noauditGap = fmt.Sprintf("%d unaudited capability functions in this kernel, room for %d", len(noaudit), noauditRangeCount)
		noaudit = nil // some would be missing: the syscall-based fallback instead
	}
	if err := configure(spec, opts, noaudit); err != nil {
		return nil, err
	}
	p.coll, err = ebpf.NewCollection(spec)
	if err != nil {
		return nil, explainLoadError(err, memlockErr)
	}
	err = p.coll.Assign(&p.objs.securityMaps)
	if err == nil {
		err = p.coll.Assign(&p.objs.securityVariables)
	}
	if err != nil {
		p.coll.Close()
		return nil, err
	}
	// Before anything attaches: breakwater is never counted, and its
	// threads learn it from the record of their group leader.
	if err := p.markSelf(); err != nil {
		p.coll.Close()
		return nil, fmt.Errorf("marking breakwater's own process: %w", err)
	}
	if p.reader, err = ringbuf.NewReader(p.objs.Events); err == nil {
		p.cgReader, err = ringbuf.NewReader(p.objs.CgroupEvents)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("opening ring buffer: %w", err)
	}
	for _, h := range Hooks {
		prog := p.coll.Programs[h.Program]
		if prog == nil {
			continue // an optional program left out above
		}
		var l link.Link
		if h.Kind == "raw_tp" {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: h.Name, Program: prog})
		} else {
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		}
		if err != nil {
			p.attachEr[h.Program] = fmt.Errorf("attaching %s to %s %s: %w", h.Program, h.Kind, h.Name, err)
			continue
		}
		p.links[h.Program] = l
	}
	if !p.Attached("cap_capable") {
		p.capInferred = true
		if err := p.objs.CapInferred.Set(true); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// configure sizes the maps and sets the programs' constants.
func configure(spec *ebpf.CollectionSpec, opts Options, noauditRanges []AddrRange) error {
	var specs securitySpecs
	if err := spec.Assign(&specs.securityMapSpecs); err != nil {
		return err
	}
	if err := spec.Assign(&specs.securityVariableSpecs); err != nil {
		return err
	}
	if opts.DeniedBudget == 0 {
		opts.DeniedBudget = DefaultDeniedBudget
	}
	if opts.SubcgroupBudget == 0 {
		opts.SubcgroupBudget = 16
	}
	if opts.MaxContainers > 0 {
		// Live containers and as many removed ones whose counters wait
		// out their expiry (user space expires the oldest beyond that).
		specs.Containers.MaxEntries = 2 * opts.MaxContainers
		// Each container's own cgroup and its budget of sub-cgroups.
		specs.TrackedCgroups.MaxEntries = opts.MaxContainers * (1 + opts.SubcgroupBudget)
		// A few attempt kinds per container; LRU, so too small only means
		// an extra event now and then.
		specs.EventSent.MaxEntries = max(specs.EventSent.MaxEntries, 4*opts.MaxContainers)
		// Each container's budget of io_uring requests in flight (not
		// preallocated: room, not memory).
		specs.UringReqs.MaxEntries = opts.MaxContainers * uringBudget
	}
	if opts.DeniedEntries == 0 {
		opts.DeniedEntries = specs.Containers.MaxEntries * opts.DeniedBudget
	}
	specs.Denied.MaxEntries = opts.DeniedEntries
	if opts.EventInterval < 0 {
		return fmt.Errorf("event interval must not be negative, got %v", opts.EventInterval)
	}
	var descs [abiCount][SyscallSlots]SyscallDesc
	for abi, table := range opts.Descs {
		if int(abi) >= abiCount {
			return fmt.Errorf("syscall ABI %d beyond the %d the programs know", abi, abiCount)
		}
		for nr, d := range table {
			if nr >= SyscallSlots {
				return fmt.Errorf("syscall %s %d beyond the %d slots of syscall_descs", abi, nr, SyscallSlots)
			}
			descs[abi][nr] = d
		}
	}
	var noaudit [noauditRangeCount]AddrRange
	copy(noaudit[:], noauditRanges)
	var ports [4]uint16
	if len(opts.RuntimePorts) > len(ports) {
		return fmt.Errorf("at most %d runtime ports, got %v", len(ports), opts.RuntimePorts)
	}
	copy(ports[:], opts.RuntimePorts)
	openat, _ := syscalls.Number(syscalls.Native, "openat")
	openat2, _ := syscalls.Number(syscalls.Native, "openat2")
	connect, _ := syscalls.Number(syscalls.Native, "connect")
	for _, set := range []struct {
		v   *ebpf.VariableSpec
		val any
	}{
		{specs.CountHost, opts.CountHost},
		{specs.EventIntervalNs, uint64(opts.EventInterval.Nanoseconds())},
		{specs.DeniedBudget, opts.DeniedBudget},
		{specs.SubcgroupBudget, opts.SubcgroupBudget},
		{specs.UringBudget, uint32(uringBudget)},
		{specs.SyscallDescs, descs},
		{specs.RuntimePorts, ports},
		{specs.NoauditRanges, noaudit},
		{specs.NoRdonlyCast, contains(opts.Without, "bpf_rdonly_cast")},
		{specs.UringNrOpenat, uint16(openat)},
		{specs.UringNrOpenat2, uint16(openat2)},
		{specs.UringNrConnect, uint16(connect)},
	} {
		if err := set.v.Set(set.val); err != nil {
			return err
		}
	}
	return nil
}

// markSelf gives breakwater's own process (and, where the kernel lets a
// thread be named, each of its threads) a record that says it is
// breakwater, and tells the programs its host thread group id where that is
// the one it sees (the host's PID namespace: on the host, or the
// DaemonSet's hostPID).
func (p *Probe) markSelf() error {
	self := TaskRec{Flags: taskSelf}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	if err := p.objs.Tasks.Update(int32(pidfd), self, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("task storage: %w", err)
	}
	const pidfdThread = unix.O_EXCL // PIDFD_THREAD, Linux 6.9
	if tasks, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, t := range tasks {
			var tid int
			if _, err := fmt.Sscan(t.Name(), &tid); err != nil || tid == os.Getpid() {
				continue
			}
			fd, err := unix.PidfdOpen(tid, pidfdThread)
			if err != nil {
				break // older kernels: the leader's record covers the threads
			}
			_ = p.objs.Tasks.Update(int32(fd), self, ebpf.UpdateAny)
			unix.Close(fd)
		}
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil && ns == "pid:[4026531836]" { // PROC_PID_INIT_INO
		return p.objs.SelfTgid.Set(uint32(os.Getpid()))
	}
	return nil
}

// explainLoadError names the missing privilege when that is the cause.
func explainLoadError(err, memlockErr error) error {
	// Without the capabilities, the library's feature probes fail too and
	// a refusal reads as "not supported" (a map flag, a map type).
	if errors.Is(err, os.ErrPermission) || (errors.Is(err, ebpf.ErrNotSupported) && len(missingCaps()) > 0) {
		msg := "breakwater needs CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8) to load tracing programs"
		missing := missingCaps()
		if len(missing) > 0 {
			msg = "missing " + strings.Join(missing, " and ") + "; " + msg
		} else if memlockErr != nil {
			msg += ", and CAP_SYS_RESOURCE to raise RLIMIT_MEMLOCK on kernels before 5.11"
		}
		return fmt.Errorf("loading BPF programs: %w: %s", err, msg)
	}
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("loading BPF programs: the kernel's verifier rejected them (unsupported kernel?): %+v", ve)
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("loading BPF programs: %w (breakwater needs BPF task storage and bpf_loop: Linux 5.17 or later)", err)
	}
	return fmt.Errorf("loading BPF programs: %w", err)
}

// missingCaps lists the capabilities loading needs that this process's
// effective set lacks.
func missingCaps() []string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return nil
	}
	eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	var out []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_BPF, "CAP_BPF"}, {unix.CAP_PERFMON, "CAP_PERFMON"}} {
		if eff&(1<<c.bit) == 0 {
			out = append(out, c.name)
		}
	}
	return out
}

// Attached reports whether a program is attached to its hook.
func (p *Probe) Attached(program string) bool { _, ok := p.links[program]; return ok }

// AttachErrors returns why hooks failed to attach or were left out, by program.
func (p *Probe) AttachErrors() map[string]error { return p.attachEr }

// CapabilitiesInferred reports whether capability checks are inferred from
// syscall results because the cap_capable tracepoint is not attached.
func (p *Probe) CapabilitiesInferred() bool { return p.capInferred }

// NoauditGap says why the checks the kernel makes for itself without
// auditing (read from /proc/kallsyms at load) cannot be told apart, or "".
func (p *Probe) NoauditGap() string { return p.noauditGap }

// Readers returns the ring buffer readers: escape events, and cgroup
// creation and removal.
func (p *Probe) Readers() []*ringbuf.Reader { return []*ringbuf.Reader{p.reader, p.cgReader} }

// StopReading closes the ring-buffer readers, which unblocks their Read.
func (p *Probe) StopReading() error {
	var errs []error
	for _, r := range []*ringbuf.Reader{p.reader, p.cgReader} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	p.reader, p.cgReader = nil, nil
	return errors.Join(errs...)
}

// Close detaches every program and frees the maps; nothing is pinned.
func (p *Probe) Close() error {
	errs := []error{p.StopReading()}
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = map[string]link.Link{}
	if p.coll != nil {
		p.coll.Close()
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// RuntimeSocket returns the identity of a Unix socket file as the programs
// compare it: its inode and the kernel's encoding of its device.
func RuntimeSocket(path string) (SockID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return SockID{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return SockID{}, fmt.Errorf("%s is not a socket", filepath.Clean(path))
	}
	dev := uint64(st.Dev)
	return SockID{Ino: st.Ino, Dev: unix.Major(dev)<<20 | unix.Minor(dev)}, nil
}
