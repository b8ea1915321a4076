package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Exported names of the generated types, so other packages never spell
// bpf2go's lower-case identifiers.
type (
	CounterKey   = securityCounterKey
	SyscallEvent = securitySyscallEvent
	CgroupEvent  = securityCgroupEvent
	EventFold    = securityEventFold
	SyscallClass = securitySyscallClass
	PathClass    = securityPathClass
	NsBit        = securityNsBit
	LostReason   = securityLostReason
	CounterKind  = securityCounterKind
	EventType    = securityEventType
)

const (
	ClassNone     = securitySyscallClassSC_NONE
	ClassPlain    = securitySyscallClassSC_PLAIN
	ClassUnshare  = securitySyscallClassSC_UNSHARE
	ClassClone    = securitySyscallClassSC_CLONE
	ClassClone3   = securitySyscallClassSC_CLONE3
	ClassSetns    = securitySyscallClassSC_SETNS
	ClassPtrace   = securitySyscallClassSC_PTRACE
	ClassOpen     = securitySyscallClassSC_OPEN
	ClassOpenat   = securitySyscallClassSC_OPENAT
	ClassOpenat2  = securitySyscallClassSC_OPENAT2
	ClassConnect  = securitySyscallClassSC_CONNECT
	ClassMknod    = securitySyscallClassSC_MKNOD
	ClassMknodat  = securitySyscallClassSC_MKNODAT
	PathProcSys   = securityPathClassPATH_PROC_SYS
	PathRelease   = securityPathClassPATH_RELEASE_AGENT
	PathBlock     = securityPathClassPATH_BLOCK_DEVICE
	PathRuntime   = securityPathClassPATH_RUNTIME_SOCKET
	KindDenied    = securityCounterKindKIND_DENIED
	KindOutcome   = securityCounterKindKIND_OUTCOME
	EventSyscall  = securityEventTypeEVENT_SYSCALL
	EventMkdir    = securityEventTypeEVENT_CGROUP_MKDIR
	EventRmdir    = securityEventTypeEVENT_CGROUP_RMDIR
	StatePending  = uint8(securityCgroupStateCGROUP_PENDING)
	StateActive   = uint8(securityCgroupStateCGROUP_ACTIVE)
	lostReasonCnt = int(securityLostReasonLOST_REASONS)
	syscallSlots  = 1024 // SYSCALL_SLOTS in security.bpf.c
)

// Namespace bits of an outcome's sub-class, in the order of the contract's
// namespace label values.
var NsBits = []struct {
	Bit  NsBit
	Name string
}{
	{securityNsBitNS_MNT, "mnt"}, {securityNsBitNS_PID, "pid"}, {securityNsBitNS_NET, "net"},
	{securityNsBitNS_USER, "user"}, {securityNsBitNS_UTS, "uts"}, {securityNsBitNS_IPC, "ipc"},
	{securityNsBitNS_CGROUP, "cgroup"}, {securityNsBitNS_TIME, "time"},
}

// LostReasons names the lost counters, indexed by LostReason.
var LostReasons = [...]string{
	securityLostReasonLOST_RINGBUF_FULL:     "ringbuf_full",
	securityLostReasonLOST_COUNTER_MAP_FULL: "counter_map_full",
	securityLostReasonLOST_PENDING_MAP_FULL: "pending_map_full",
	securityLostReasonLOST_CAPS_MAP_FULL:    "caps_map_full",
	securityLostReasonLOST_TRACKED_MAP_FULL: "tracked_map_full",
}

// Hook is one attach point of the security programs.
type Hook struct {
	Program string // the BPF program's name
	Name    string // the raw tracepoint it attaches to
}

// Hooks lists every program breakwater attaches, in attach order.
var Hooks = []Hook{
	{"cgroup_mkdir", "cgroup_mkdir"},
	{"cgroup_rmdir", "cgroup_rmdir"},
	{"sched_process_exec", "sched_process_exec"},
	{"sys_enter", "sys_enter"},
	{"sys_exit", "sys_exit"},
}

// Options tune the programs before they load.
type Options struct {
	// CountHost counts processes outside tracked cgroups too.
	CountHost bool
	// MaxContainers bounds the cgroup maps.
	MaxContainers uint32
	// CounterEntries bounds the counter map (keys, not events).
	CounterEntries uint32
	// Classes maps syscall numbers to what the kernel must work out for them.
	Classes map[uint32]SyscallClass
	// EventInterval is the shortest gap between two escape events of one
	// container with the same syscall, sub-class and result; repeats within
	// it travel as a count with the next event (see Folded and
	// PendingRepeats). Zero sends every attempt.
	EventInterval time.Duration
}

// Probe is the loaded and attached security programs.
type Probe struct {
	objs     securityObjects
	links    map[string]link.Link
	attachEr map[string]error
	reader   *ringbuf.Reader // escape events
	cgReader *ringbuf.Reader // cgroup creation and removal
}

// ErrNoBTF is returned when the kernel exposes no BTF, which CO-RE needs.
var ErrNoBTF = errors.New("kernel BTF not available at /sys/kernel/btf/vmlinux: breakwater's CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.8 or later)")

// Load loads the programs into the kernel and attaches every hook it can.
// It fails when the programs cannot load at all; a hook that cannot attach
// is reported by Attached and AttachErrors instead.
func Load(opts Options) (*Probe, error) {
	if _, err := btf.LoadKernelSpec(); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoBTF, err)
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. Without the
	// privilege to raise it the load below fails and names what is missing.
	memlockErr := rlimit.RemoveMemlock()
	spec, err := loadSecurity()
	if err != nil {
		return nil, fmt.Errorf("parsing embedded BPF object: %w", err)
	}
	// The typed specs bpf2go generated: no map or variable is named by string.
	var specs securitySpecs
	if err := spec.Assign(&specs); err != nil {
		return nil, err
	}
	if opts.MaxContainers > 0 {
		specs.TrackedCgroups.MaxEntries = opts.MaxContainers
		specs.ExecCaps.MaxEntries = opts.MaxContainers
		// A few attempt kinds per container; LRU, so too small only means
		// an extra event now and then.
		specs.EventSent.MaxEntries = max(specs.EventSent.MaxEntries, 4*opts.MaxContainers)
	}
	if opts.CounterEntries > 0 {
		specs.Counters.MaxEntries = opts.CounterEntries
	}
	if err := specs.SelfTgid.Set(uint32(os.Getpid())); err != nil {
		return nil, err
	}
	if err := specs.CountHost.Set(opts.CountHost); err != nil {
		return nil, err
	}
	if opts.EventInterval < 0 {
		return nil, fmt.Errorf("event interval must not be negative, got %v", opts.EventInterval)
	}
	if err := specs.EventIntervalNs.Set(uint64(opts.EventInterval.Nanoseconds())); err != nil {
		return nil, err
	}
	var classes [syscallSlots]uint8
	for nr, class := range opts.Classes {
		if nr >= syscallSlots {
			return nil, fmt.Errorf("syscall number %d beyond the %d slots of syscall_classes", nr, syscallSlots)
		}
		classes[nr] = uint8(class)
	}
	if err := specs.SyscallClasses.Set(classes); err != nil {
		return nil, err
	}
	p := &Probe{links: map[string]link.Link{}, attachEr: map[string]error{}}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, explainLoadError(err, memlockErr)
	}
	if p.reader, err = ringbuf.NewReader(p.objs.Events); err == nil {
		p.cgReader, err = ringbuf.NewReader(p.objs.CgroupEvents)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("opening ring buffer: %w", err)
	}
	progs := map[string]*ebpf.Program{
		"cgroup_mkdir":       p.objs.CgroupMkdir,
		"cgroup_rmdir":       p.objs.CgroupRmdir,
		"sched_process_exec": p.objs.SchedProcessExec,
		"sys_enter":          p.objs.SysEnter,
		"sys_exit":           p.objs.SysExit,
	}
	for _, h := range Hooks {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: h.Name, Program: progs[h.Program]})
		if err != nil {
			p.attachEr[h.Program] = fmt.Errorf("attaching %s to raw tracepoint %s: %w", h.Program, h.Name, err)
			continue
		}
		p.links[h.Program] = l
	}
	return p, nil
}

// explainLoadError names the missing privilege when that is the cause.
func explainLoadError(err, memlockErr error) error {
	if errors.Is(err, os.ErrPermission) {
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

// AttachErrors returns why hooks failed to attach, by program.
func (p *Probe) AttachErrors() map[string]error { return p.attachEr }

// Track starts counting a cgroup. A pending cgroup starts counting at its
// first exec of something other than the runtime.
func (p *Probe) Track(cgroupID uint64, state uint8) error {
	return p.objs.TrackedCgroups.Put(cgroupID, state)
}

// Activate marks a tracked cgroup as started unless it already is.
func (p *Probe) Activate(cgroupID uint64) error {
	return p.objs.TrackedCgroups.Update(cgroupID, StateActive, ebpf.UpdateExist)
}

// State returns a tracked cgroup's state, or 0 when it is not tracked.
func (p *Probe) State(cgroupID uint64) uint8 {
	var s uint8
	if err := p.objs.TrackedCgroups.Lookup(cgroupID, &s); err != nil {
		return 0
	}
	return s
}

// TrackedIDs returns the cgroups the kernel currently tracks.
func (p *Probe) TrackedIDs() ([]uint64, error) {
	var (
		ids   []uint64
		id    uint64
		state uint8
	)
	it := p.objs.TrackedCgroups.Iterate()
	for it.Next(&id, &state) {
		ids = append(ids, id)
	}
	return ids, it.Err()
}

// Untrack stops counting a cgroup; its counters stay until Forget.
func (p *Probe) Untrack(cgroupID uint64) error {
	err := p.objs.TrackedCgroups.Delete(cgroupID)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Counter is one counter map entry summed over CPUs.
type Counter struct {
	Key   CounterKey
	Value uint64
}

// Counters reads every counter.
func (p *Probe) Counters() ([]Counter, error) {
	var (
		out    []Counter
		key    CounterKey
		values []uint64
	)
	it := p.objs.Counters.Iterate()
	for it.Next(&key, &values) {
		out = append(out, Counter{Key: key, Value: sumPerCPU(values)})
	}
	return out, it.Err()
}

// ExecCaps returns the effective capabilities seen at exec, by cgroup.
func (p *Probe) ExecCaps() (map[uint64]uint64, error) {
	out := map[uint64]uint64{}
	var id, caps uint64
	it := p.objs.ExecCaps.Iterate()
	for it.Next(&id, &caps) {
		out[id] = caps
	}
	return out, it.Err()
}

// Lost returns the lost-event counters by reason name.
func (p *Probe) Lost() (map[string]uint64, error) {
	out := map[string]uint64{}
	for i := 0; i < lostReasonCnt; i++ {
		var values []uint64
		if err := p.objs.Lost.Lookup(uint32(i), &values); err != nil {
			return nil, err
		}
		out[LostReasons[i]] = sumPerCPU(values)
	}
	return out, nil
}

// Folded returns the escape events the kernel did not send because the same
// attempt was sent less than the event interval before.
func (p *Probe) Folded() (uint64, error) {
	var values []uint64
	if err := p.objs.EventsFolded.Lookup(uint32(0), &values); err != nil {
		return 0, err
	}
	return sumPerCPU(values), nil
}

// sumPerCPU adds up the per-CPU values of one counter.
func sumPerCPU(values []uint64) uint64 {
	var sum uint64
	for _, v := range values {
		sum += v
	}
	return sum
}

// PendingRepeats returns, by escape event key, the repeats the kernel folded
// after the last event it sent for that key: what no event has reported yet.
func (p *Probe) PendingRepeats() (map[CounterKey]uint64, error) {
	out := map[CounterKey]uint64{}
	var (
		key   CounterKey
		folds []EventFold
	)
	it := p.objs.EventSent.Iterate()
	for it.Next(&key, &folds) {
		var n uint64
		for _, f := range folds {
			n += f.Repeats
		}
		if n > 0 {
			out[key] = n
		}
	}
	return out, it.Err()
}

// Forget deletes every counter, the event times and the capability record
// of a cgroup whose series expired.
func (p *Probe) Forget(cgroupID uint64) error {
	if err := deleteCgroupKeys(p.objs.Counters, cgroupID, new([]uint64)); err != nil {
		return err
	}
	if err := deleteCgroupKeys(p.objs.EventSent, cgroupID, new([]EventFold)); err != nil {
		return err
	}
	if err := p.objs.ExecCaps.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// deleteCgroupKeys deletes the entries of a map keyed by CounterKey that
// belong to one cgroup; value is where iteration decodes the values to.
func deleteCgroupKeys(m *ebpf.Map, cgroupID uint64, value any) error {
	var (
		keys []CounterKey
		key  CounterKey
	)
	it := m.Iterate()
	for it.Next(&key, value) {
		if key.CgroupId == cgroupID {
			keys = append(keys, key)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

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
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}

// Floor is the empty programs on the syscall hooks, for benchmarks.
type Floor struct {
	links []link.Link
	objs  floorObjects
}

// LoadFloor attaches empty programs to sys_enter and sys_exit.
func LoadFloor() (*Floor, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, err
	}
	f := &Floor{}
	if err := loadFloorObjects(&f.objs, nil); err != nil {
		return nil, err
	}
	for name, prog := range map[string]*ebpf.Program{"sys_enter": f.objs.FloorSysEnter, "sys_exit": f.objs.FloorSysExit} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: prog})
		if err != nil {
			f.Close()
			return nil, err
		}
		f.links = append(f.links, l)
	}
	return f, nil
}

// Close detaches the empty programs.
func (f *Floor) Close() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	return errors.Join(append(errs, f.objs.Close())...)
}
