package security

import (
	"fmt"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/internal/syscalls"
)

// rule is what one syscall means. The table below is the documented
// syscall-to-metric mapping (docs/security-metrics.md renders it); adding a
// syscall is one entry, in every ABI that has it.
type rule struct {
	class      bpf.SyscallClass
	mountOp    string // operation label of breakwater_mount_operations_total
	nsOp       string // operation label of breakwater_namespace_operations_total
	capability string // the capability the call needs, where the kernel cannot say (no cap_capable)
	technique  string // escape technique of a plain call; namespace, path and socket calls decide their own
}

// Table is the syscall table: every syscall breakwater classifies.
var Table = map[string]rule{
	"mount":          {class: bpf.ClassPlain, mountOp: "mount", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"umount":         {class: bpf.ClassPlain, mountOp: "umount", capability: "CAP_SYS_ADMIN"}, // ia32's oldumount
	"umount2":        {class: bpf.ClassPlain, mountOp: "umount", capability: "CAP_SYS_ADMIN"},
	"fsopen":         {class: bpf.ClassPlain, mountOp: "fsmount", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"fsmount":        {class: bpf.ClassPlain, mountOp: "fsmount", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"fspick":         {class: bpf.ClassPlain, mountOp: "fsmount", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"fsconfig":       {class: bpf.ClassPlain, mountOp: "fsmount", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"move_mount":     {class: bpf.ClassPlain, mountOp: "move_mount", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"open_tree":      {class: bpf.ClassPlain, mountOp: "open_tree", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"open_tree_attr": {class: bpf.ClassPlain, mountOp: "open_tree", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"mount_setattr":  {class: bpf.ClassPlain, mountOp: "mount", capability: "CAP_SYS_ADMIN", technique: "mount"},
	"pivot_root":     {class: bpf.ClassPlain, mountOp: "pivot_root", capability: "CAP_SYS_ADMIN", technique: "chroot"},
	"chroot":         {class: bpf.ClassPlain, mountOp: "chroot", capability: "CAP_SYS_CHROOT", technique: "chroot"},

	"unshare": {class: bpf.ClassUnshare, nsOp: "unshare", capability: "CAP_SYS_ADMIN"},
	"clone":   {class: bpf.ClassClone, nsOp: "clone", capability: "CAP_SYS_ADMIN"},
	"clone3":  {class: bpf.ClassClone3, nsOp: "clone", capability: "CAP_SYS_ADMIN"},
	"setns":   {class: bpf.ClassSetns, nsOp: "setns", capability: "CAP_SYS_ADMIN"},

	"ptrace":            {class: bpf.ClassPtrace, capability: "CAP_SYS_PTRACE", technique: "ptrace"},
	"process_vm_writev": {class: bpf.ClassPlain, capability: "CAP_SYS_PTRACE", technique: "ptrace"},

	"init_module":   {class: bpf.ClassPlain, capability: "CAP_SYS_MODULE", technique: "kernel_module"},
	"finit_module":  {class: bpf.ClassPlain, capability: "CAP_SYS_MODULE", technique: "kernel_module"},
	"delete_module": {class: bpf.ClassPlain, capability: "CAP_SYS_MODULE", technique: "kernel_module"},

	"bpf":               {class: bpf.ClassPlain, capability: "CAP_BPF", technique: "kernel_interface"},
	"perf_event_open":   {class: bpf.ClassPlain, capability: "CAP_PERFMON", technique: "kernel_interface"},
	"kexec_load":        {class: bpf.ClassPlain, capability: "CAP_SYS_BOOT", technique: "kernel_interface"},
	"kexec_file_load":   {class: bpf.ClassPlain, capability: "CAP_SYS_BOOT", technique: "kernel_interface"},
	"reboot":            {class: bpf.ClassPlain, capability: "CAP_SYS_BOOT", technique: "kernel_interface"},
	"iopl":              {class: bpf.ClassPlain, capability: "CAP_SYS_RAWIO", technique: "kernel_interface"},
	"ioperm":            {class: bpf.ClassPlain, capability: "CAP_SYS_RAWIO", technique: "kernel_interface"},
	"open_by_handle_at": {class: bpf.ClassOpenByHandle, capability: "CAP_DAC_READ_SEARCH", technique: "kernel_interface"},
	"swapon":            {class: bpf.ClassPlain, capability: "CAP_SYS_ADMIN", technique: "kernel_interface"},

	"open":       {class: bpf.ClassOpen},
	"creat":      {class: bpf.ClassCreat},
	"openat":     {class: bpf.ClassOpenat},
	"openat2":    {class: bpf.ClassOpenat2},
	"connect":    {class: bpf.ClassConnect},
	"socketcall": {class: bpf.ClassSocketcall}, // ia32: connect and fast-open sends through the multiplexer
	"sendto":     {class: bpf.ClassSendto},     // with MSG_FASTOPEN a TCP send connects
	"sendmsg":    {class: bpf.ClassSendmsg},
	"sendmmsg":   {class: bpf.ClassSendmmsg},
	"mknod":      {class: bpf.ClassMknod, capability: "CAP_MKNOD", technique: "block_device"},
	"mknodat":    {class: bpf.ClassMknodat, capability: "CAP_MKNOD", technique: "block_device"},

	"swapoff":       {class: bpf.ClassPlain, capability: "CAP_SYS_ADMIN"},
	"sethostname":   {class: bpf.ClassPlain, capability: "CAP_SYS_ADMIN"},
	"setdomainname": {class: bpf.ClassPlain, capability: "CAP_SYS_ADMIN"},
	"settimeofday":  {class: bpf.ClassPlain, capability: "CAP_SYS_TIME"},
	"clock_settime": {class: bpf.ClassPlain, capability: "CAP_SYS_TIME"},
	"acct":          {class: bpf.ClassPlain, capability: "CAP_SYS_PACCT"},
}

// vmAccounting are the syscalls that may charge memory to the caller
// (new or grown writable mappings, a copied address space, a new stack):
// the kernel asks CAP_SYS_ADMIN of each such charge only to grant root a
// reserve, audits nothing and refuses nothing, so those checks are not
// attempts (cap_capable in security.bpf.c).
var vmAccounting = []string{"mmap", "mmap2", "old_mmap", "brk", "mprotect", "pkey_mprotect", "mremap",
	"remap_file_pages", "clone", "clone3", "fork", "vfork", "execve", "execveat", "shmget", "shmat", "madvise",
	"mlock", "mlock2", "mlockall"}

// Capabilities names capability numbers (linux/capability.h).
var Capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// capabilityName names a capability number, "cap_<n>" for one newer than the table.
func capabilityName(n int) string {
	if n >= 0 && n < len(Capabilities) {
		return Capabilities[n]
	}
	return fmt.Sprintf("cap_%d", n)
}

func capabilityNumber(name string) (uint8, bool) {
	for i, c := range Capabilities {
		if c == name {
			return uint8(i), true
		}
	}
	return 0, false
}

func index(names []string, name string) uint8 {
	for i, n := range names {
		if n == name && n != "" {
			return uint8(i)
		}
	}
	return 0
}

// Descs renders the table for the BPF programs: what each syscall number of
// each ABI means.
func Descs() (map[syscalls.ABI]map[uint32]bpf.SyscallDesc, error) {
	out := map[syscalls.ABI]map[uint32]bpf.SyscallDesc{}
	for _, abi := range syscalls.ABIs() {
		out[abi] = map[uint32]bpf.SyscallDesc{}
		for name, r := range Table {
			nr, ok := syscalls.Number(abi, name)
			if !ok {
				continue // not in this ABI (open on arm64, socketcall on x86_64)
			}
			d := bpf.SyscallDesc{Class: uint8(r.class), Capability: bpf.NoCapability}
			if r.technique != "" {
				t, ok := bpf.TechniqueByName[r.technique]
				if !ok {
					return nil, fmt.Errorf("syscall table: %s has unknown technique %q", name, r.technique)
				}
				d.Technique = uint8(t)
			}
			if d.MountOp = index(bpf.MountOpNames[:], r.mountOp); r.mountOp != "" && d.MountOp == 0 {
				return nil, fmt.Errorf("syscall table: %s has unknown mount operation %q", name, r.mountOp)
			}
			if d.NsOp = index(bpf.NsOpNames[:], r.nsOp); r.nsOp != "" && d.NsOp == 0 {
				return nil, fmt.Errorf("syscall table: %s has unknown namespace operation %q", name, r.nsOp)
			}
			if r.capability != "" {
				c, ok := capabilityNumber(r.capability)
				if !ok {
					return nil, fmt.Errorf("syscall table: %s needs unknown capability %q", name, r.capability)
				}
				d.Capability = c
			}
			out[abi][nr] = d
		}
		for _, name := range vmAccounting {
			if nr, ok := syscalls.Number(abi, name); ok {
				d := out[abi][nr]
				if d.Class == 0 && d.Capability == 0 {
					d.Capability = bpf.NoCapability
				}
				d.Pad[0] |= bpf.DescVMAccounting
				out[abi][nr] = d
			}
		}
	}
	return out, nil
}
