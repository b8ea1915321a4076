package security

import (
	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/internal/syscalls"
)

// Escape techniques, the closed set of the "technique" label.
const (
	TechMount           = "mount"
	TechNamespace       = "namespace"
	TechChroot          = "chroot"
	TechPtrace          = "ptrace"
	TechKernelModule    = "kernel_module"
	TechKernelInterface = "kernel_interface"
	TechReleaseAgent    = "cgroup_release_agent"
	TechProcSysWrite    = "proc_sys_write"
	TechRuntimeSocket   = "runtime_socket"
	TechBlockDevice     = "block_device"
)

// Techniques lists every technique value.
var Techniques = []string{TechMount, TechNamespace, TechChroot, TechPtrace, TechKernelModule,
	TechKernelInterface, TechReleaseAgent, TechProcSysWrite, TechRuntimeSocket, TechBlockDevice}

// rule is what one syscall means. The table below is the documented
// syscall-to-metric mapping (docs/security-metrics.md renders it); adding a
// syscall is one entry.
type rule struct {
	class      bpf.SyscallClass
	mountOp    string // operation label of breakwater_mount_operations_total
	nsOp       string // operation label of breakwater_namespace_operations_total
	capability string // the capability the call needs; nsCapability for namespace calls
	technique  string // escape technique; techniqueOf decides for namespace and path calls
}

// nsCapability marks namespace calls: CAP_SYS_ADMIN unless the call only
// creates a user namespace, which unprivileged processes may do.
const nsCapability = "namespace"

var table = map[string]rule{
	"mount":      {class: bpf.ClassPlain, mountOp: "mount", capability: "CAP_SYS_ADMIN", technique: TechMount},
	"umount2":    {class: bpf.ClassPlain, mountOp: "umount", capability: "CAP_SYS_ADMIN"},
	"fsopen":     {class: bpf.ClassPlain, mountOp: "fsmount", capability: "CAP_SYS_ADMIN", technique: TechMount},
	"fsmount":    {class: bpf.ClassPlain, mountOp: "fsmount", capability: "CAP_SYS_ADMIN", technique: TechMount},
	"move_mount": {class: bpf.ClassPlain, mountOp: "move_mount", capability: "CAP_SYS_ADMIN", technique: TechMount},
	"open_tree":  {class: bpf.ClassPlain, mountOp: "open_tree", capability: "CAP_SYS_ADMIN", technique: TechMount},
	"pivot_root": {class: bpf.ClassPlain, mountOp: "pivot_root", capability: "CAP_SYS_ADMIN", technique: TechChroot},
	"chroot":     {class: bpf.ClassPlain, mountOp: "chroot", capability: "CAP_SYS_CHROOT", technique: TechChroot},

	"unshare": {class: bpf.ClassUnshare, nsOp: "unshare", capability: nsCapability},
	"clone":   {class: bpf.ClassClone, nsOp: "clone", capability: nsCapability},
	"clone3":  {class: bpf.ClassClone3, nsOp: "clone", capability: nsCapability},
	"setns":   {class: bpf.ClassSetns, nsOp: "setns", capability: "CAP_SYS_ADMIN", technique: TechNamespace},

	"ptrace":            {class: bpf.ClassPtrace, capability: "CAP_SYS_PTRACE", technique: TechPtrace},
	"process_vm_writev": {class: bpf.ClassPlain, capability: "CAP_SYS_PTRACE", technique: TechPtrace},

	"init_module":   {class: bpf.ClassPlain, capability: "CAP_SYS_MODULE", technique: TechKernelModule},
	"finit_module":  {class: bpf.ClassPlain, capability: "CAP_SYS_MODULE", technique: TechKernelModule},
	"delete_module": {class: bpf.ClassPlain, capability: "CAP_SYS_MODULE", technique: TechKernelModule},

	"bpf":               {class: bpf.ClassPlain, capability: "CAP_BPF", technique: TechKernelInterface},
	"perf_event_open":   {class: bpf.ClassPlain, capability: "CAP_PERFMON", technique: TechKernelInterface},
	"kexec_load":        {class: bpf.ClassPlain, capability: "CAP_SYS_BOOT", technique: TechKernelInterface},
	"kexec_file_load":   {class: bpf.ClassPlain, capability: "CAP_SYS_BOOT", technique: TechKernelInterface},
	"reboot":            {class: bpf.ClassPlain, capability: "CAP_SYS_BOOT", technique: TechKernelInterface},
	"iopl":              {class: bpf.ClassPlain, capability: "CAP_SYS_RAWIO", technique: TechKernelInterface},
	"ioperm":            {class: bpf.ClassPlain, capability: "CAP_SYS_RAWIO", technique: TechKernelInterface},
	"open_by_handle_at": {class: bpf.ClassPlain, capability: "CAP_DAC_READ_SEARCH", technique: TechKernelInterface},
	"swapon":            {class: bpf.ClassPlain, capability: "CAP_SYS_ADMIN", technique: TechKernelInterface},

	"open":    {class: bpf.ClassOpen},
	"creat":   {class: bpf.ClassOpen},
	"openat":  {class: bpf.ClassOpenat},
	"openat2": {class: bpf.ClassOpenat2},
	"connect": {class: bpf.ClassConnect},
	"mknod":   {class: bpf.ClassMknod, capability: "CAP_MKNOD", technique: TechBlockDevice},
	"mknodat": {class: bpf.ClassMknodat, capability: "CAP_MKNOD", technique: TechBlockDevice},

	"swapoff":       {class: bpf.ClassPlain, capability: "CAP_SYS_ADMIN"},
	"sethostname":   {class: bpf.ClassPlain, capability: "CAP_SYS_ADMIN"},
	"setdomainname": {class: bpf.ClassPlain, capability: "CAP_SYS_ADMIN"},
	"settimeofday":  {class: bpf.ClassPlain, capability: "CAP_SYS_TIME"},
	"clock_settime": {class: bpf.ClassPlain, capability: "CAP_SYS_TIME"},
	"acct":          {class: bpf.ClassPlain, capability: "CAP_SYS_PACCT"},
}

// pathTechniques maps the kernel's path sub-classes to techniques.
var pathTechniques = map[uint16]string{
	uint16(bpf.PathProcSys): TechProcSysWrite,
	uint16(bpf.PathRelease): TechReleaseAgent,
	uint16(bpf.PathBlock):   TechBlockDevice,
	uint16(bpf.PathRuntime): TechRuntimeSocket,
}

// Classes returns the syscall-number-to-class map the BPF programs load.
func Classes() map[uint32]bpf.SyscallClass {
	out := make(map[uint32]bpf.SyscallClass, len(table))
	for name, r := range table {
		if nr, ok := syscalls.Number(name); ok {
			out[nr] = r.class
		}
	}
	return out
}

// outcome is what one counted syscall outcome adds to each metric.
type outcome struct {
	mountOp    string
	nsOps      []string // namespace label values
	nsOp       string
	capability string
	technique  string
}

// derive turns a kernel outcome key (syscall, sub-class) into metric labels.
func derive(syscall string, sub uint16) (outcome, bool) {
	r, ok := table[syscall]
	if !ok {
		return outcome{}, false
	}
	o := outcome{mountOp: r.mountOp, nsOp: r.nsOp, capability: r.capability, technique: r.technique}
	switch r.class {
	case bpf.ClassUnshare, bpf.ClassClone, bpf.ClassClone3, bpf.ClassSetns:
		var userOnly = true
		for _, b := range bpf.NsBits {
			if sub&uint16(b.Bit) != 0 {
				o.nsOps = append(o.nsOps, b.Name)
				if b.Name != "user" {
					userOnly = false
				}
			}
		}
		if r.class != bpf.ClassSetns {
			if len(o.nsOps) == 0 {
				// unshare(CLONE_FILES) and the like touch no namespace.
				return outcome{}, false
			}
			if sub&uint16(bpf.NsBits[0].Bit) != 0 || sub&uint16(bpf.NsBits[3].Bit) != 0 {
				o.technique = TechNamespace // a new user or mount namespace
			}
		}
		if o.capability == nsCapability {
			o.capability = "CAP_SYS_ADMIN"
			if userOnly {
				o.capability = ""
			}
		}
	case bpf.ClassOpen, bpf.ClassOpenat, bpf.ClassOpenat2, bpf.ClassConnect:
		o.technique = pathTechniques[sub]
		if o.technique == "" {
			return outcome{}, false
		}
	}
	return o, true
}
