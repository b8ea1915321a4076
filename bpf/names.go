package bpf

// Exported names of the generated types, so other packages never spell
// bpf2go's lower-case identifiers.
type (
	SyscallDesc    = securitySyscallDesc
	ContainerStats = securityContainerStats
	DeniedKey      = securityDeniedKey
	CgroupRec      = securityCgroupRec
	TaskRec        = securityTaskRec
	SockID         = securitySockId
	AddrRange      = securityAddrRange
	SyscallEvent   = securitySyscallEvent
	CgroupEvent    = securityCgroupEvent
	FoldKey        = securityFoldKey
	EventFold      = securityEventFold
	SyscallClass   = securitySyscallClass
	Technique      = securityTechnique
	NsOp           = securityNsOp
	NsType         = securityNsType
	MountOp        = securityMountOp
	DenyReason     = securityDenyReason
	PathClass      = securityPathClass
	Origin         = securityOrigin
	EventType      = securityEventType
	LostReason     = securityLostReason
)

// Syscall classes: what the kernel works out about a syscall before it can
// be named (see classify_enter in security.bpf.c).
const (
	ClassNone         = securitySyscallClassSC_NONE
	ClassPlain        = securitySyscallClassSC_PLAIN
	ClassUnshare      = securitySyscallClassSC_UNSHARE
	ClassClone        = securitySyscallClassSC_CLONE
	ClassClone3       = securitySyscallClassSC_CLONE3
	ClassSetns        = securitySyscallClassSC_SETNS
	ClassPtrace       = securitySyscallClassSC_PTRACE
	ClassOpen         = securitySyscallClassSC_OPEN
	ClassCreat        = securitySyscallClassSC_CREAT
	ClassOpenat       = securitySyscallClassSC_OPENAT
	ClassOpenat2      = securitySyscallClassSC_OPENAT2
	ClassOpenByHandle = securitySyscallClassSC_OPEN_BY_HANDLE
	ClassConnect      = securitySyscallClassSC_CONNECT
	ClassSocketcall   = securitySyscallClassSC_SOCKETCALL
	ClassMknod        = securitySyscallClassSC_MKNOD
	ClassMknodat      = securitySyscallClassSC_MKNODAT
	ClassSendto       = securitySyscallClassSC_SENDTO
	ClassSendmsg      = securitySyscallClassSC_SENDMSG
	ClassSendmmsg     = securitySyscallClassSC_SENDMMSG
	TechniqueNone     = securityTechniqueTECH_NONE
	NsOpNone          = securityNsOpNSOP_NONE
	MountOpNone       = securityMountOpMOUNTOP_NONE
	DenySeccomp       = securityDenyReasonDENY_SECCOMP
	DenyKernel        = securityDenyReasonDENY_KERNEL
	EventSyscall      = securityEventTypeEVENT_SYSCALL
	EventMkdir        = securityEventTypeEVENT_CGROUP_MKDIR
	EventRmdir        = securityEventTypeEVENT_CGROUP_RMDIR
	OriginIOUring     = securityOriginORIGIN_IO_URING
	taskSelf          = uint32(securityTaskFlagTASK_SELF)
	techniqueCount    = int(securityTechniqueTECHNIQUES)
	nsOpCount         = int(securityNsOpNS_OPS)
	nsTypeCount       = int(securityNsTypeNS_TYPES)
	mountOpCount      = int(securityMountOpMOUNT_OPS)
	lostReasonCount   = int(securityLostReasonLOST_REASONS)
	pathClassCount    = int(securityPathClassPATH_CLASSES)
	abiCount          = int(securityAbiABIS)
	NoCapability      = 0xff // SyscallDesc.Capability of a call that needs none
	DescVMAccounting  = 0x1  // SyscallDesc.Pad[0]: the call may charge memory (see cap_capable)
	CapSlots          = 64   // CAP_SLOTS
	SyscallSlots      = 1024 // SYSCALL_SLOTS
	DetailLen         = 256  // DETAIL_LEN
	noauditRangeCount = 8    // NOAUDIT_RANGES
)

// The kernel counts by raw indexes; these tables are the one place that
// says what each means, in the contract's label values.

// TechniqueNames names the escape techniques (the technique label).
var TechniqueNames = [...]string{
	securityTechniqueTECH_NONE:             "",
	securityTechniqueTECH_MOUNT:            "mount",
	securityTechniqueTECH_NAMESPACE:        "namespace",
	securityTechniqueTECH_CHROOT:           "chroot",
	securityTechniqueTECH_PTRACE:           "ptrace",
	securityTechniqueTECH_KERNEL_MODULE:    "kernel_module",
	securityTechniqueTECH_KERNEL_INTERFACE: "kernel_interface",
	securityTechniqueTECH_RELEASE_AGENT:    "cgroup_release_agent",
	securityTechniqueTECH_PROC_SYS_WRITE:   "proc_sys_write",
	securityTechniqueTECH_RUNTIME_SOCKET:   "runtime_socket",
	securityTechniqueTECH_BLOCK_DEVICE:     "block_device",
}

// TechniqueByName is the reverse of TechniqueNames.
var TechniqueByName = func() map[string]Technique {
	m := map[string]Technique{}
	for i, n := range TechniqueNames {
		if n != "" {
			m[n] = Technique(i)
		}
	}
	return m
}()

// NsOpNames names the operations of breakwater_namespace_operations_total.
var NsOpNames = [...]string{
	securityNsOpNSOP_NONE:    "",
	securityNsOpNSOP_UNSHARE: "unshare",
	securityNsOpNSOP_SETNS:   "setns",
	securityNsOpNSOP_CLONE:   "clone",
}

// NsTypeNames names the kinds of Linux namespace (the namespace_type label).
var NsTypeNames = [...]string{
	securityNsTypeNS_MNT:    "mnt",
	securityNsTypeNS_PID:    "pid",
	securityNsTypeNS_NET:    "net",
	securityNsTypeNS_USER:   "user",
	securityNsTypeNS_UTS:    "uts",
	securityNsTypeNS_IPC:    "ipc",
	securityNsTypeNS_CGROUP: "cgroup",
	securityNsTypeNS_TIME:   "time",
}

// MountOpNames names the operations of breakwater_mount_operations_total.
var MountOpNames = [...]string{
	securityMountOpMOUNTOP_NONE:       "",
	securityMountOpMOUNTOP_MOUNT:      "mount",
	securityMountOpMOUNTOP_UMOUNT:     "umount",
	securityMountOpMOUNTOP_PIVOT_ROOT: "pivot_root",
	securityMountOpMOUNTOP_CHROOT:     "chroot",
	securityMountOpMOUNTOP_FSMOUNT:    "fsmount",
	securityMountOpMOUNTOP_MOVE_MOUNT: "move_mount",
	securityMountOpMOUNTOP_OPEN_TREE:  "open_tree",
}

// DenyReasonNames names why a syscall counts as denied (the reason label).
var DenyReasonNames = map[DenyReason]string{
	securityDenyReasonDENY_SECCOMP: "seccomp",
	securityDenyReasonDENY_KERNEL:  "kernel",
}

// PathClassNames says what a path or socket sub-class of an event reached.
var PathClassNames = [...]string{
	securityPathClassPATH_NONE:           "",
	securityPathClassPATH_PROC_SYS:       "kernel sysctl or sysrq",
	securityPathClassPATH_RELEASE_AGENT:  "cgroup v1 release agent",
	securityPathClassPATH_BLOCK_DEVICE:   "block or memory device",
	securityPathClassPATH_RUNTIME_SOCKET: "container runtime API",
	securityPathClassPATH_UEVENT_HELPER:  "uevent helper",
	securityPathClassPATH_PROC_MEM:       "another task's memory",
}

// LostReasons names the lost-event counters (the reason label of
// breakwater_bpf_events_lost_total), one per budget.
var LostReasons = [...]string{
	securityLostReasonLOST_RINGBUF_FULL:        "ringbuf_full",
	securityLostReasonLOST_CGROUP_RINGBUF_FULL: "cgroup_ringbuf_full",
	securityLostReasonLOST_CONTAINER_LIMIT:     "container_limit",
	securityLostReasonLOST_SUBCGROUP_LIMIT:     "subcgroup_limit",
	securityLostReasonLOST_TASK_STORAGE:        "task_storage",
	securityLostReasonLOST_URING_MAP_FULL:      "uring_map_full",
	securityLostReasonLOST_ARGS_UNREADABLE:     "args_unreadable",
	securityLostReasonLOST_URING_BUDGET:        "uring_budget",
}
