/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only) */
/*
 * The types breakwater's programs share with user space: bpf2go generates
 * their Go twins (`-type`), so the layouts here are the one definition.
 * Index enums (technique, namespace operation, mount operation) are named
 * in Go by the syscall table that also fills syscall_desc; a test checks
 * that every value has exactly one name.
 */
#ifndef BREAKWATER_TYPES_H
#define BREAKWATER_TYPES_H

#define SYSCALL_SLOTS 1024 /* syscall numbers per ABI; power of two */
#define SYSCALL_WORDS (SYSCALL_SLOTS / 64)
/* The slot of every number beyond the tables (a call the kernel answers
 * with ENOSYS): no syscall of any ABI has it, so it is never classified. */
#define OTHER_SLOT (SYSCALL_SLOTS - 1)
#define CAP_SLOTS 64
#define DETAIL_LEN 256 /* power of two: indexes are masked with DETAIL_LEN-1 */
#define CGROUP_PATH_LEN 256
#define COMM_LEN 16

/* The syscall ABIs of the architecture: x86_64, ia32 and x32 on amd64;
 * AArch64 and AArch32 on arm64. */
enum abi {
	ABI_NATIVE = 0,
	ABI_COMPAT = 1, /* ia32 (int 0x80, sysenter), AArch32 */
	ABI_X32 = 2,
	ABIS = 3,
};

/* What the kernel must work out about a syscall before it can be named. */
enum syscall_class {
	SC_NONE = 0,
	SC_PLAIN,      /* counted as is: mount, bpf, init_module, ... */
	SC_UNSHARE,    /* flags in arg0 */
	SC_CLONE,      /* flags in arg0; counted only with CLONE_NEW* */
	SC_CLONE3,     /* struct clone_args * in arg0 */
	SC_SETNS,      /* fd in arg0, nstype in arg1 */
	SC_PTRACE,     /* request in arg0; attach, seize and poke only */
	SC_OPEN,       /* path in arg0, flags in arg1 */
	SC_CREAT,      /* path in arg0; always a write */
	SC_OPENAT,     /* dirfd in arg0, path in arg1, flags in arg2 */
	SC_OPENAT2,    /* dirfd in arg0, path in arg1, struct open_how * in arg2 */
	SC_OPEN_BY_HANDLE, /* the file it opens, and kernel_interface whatever it is */
	SC_CONNECT,    /* fd in arg0, sockaddr in arg1, its length in arg2 */
	SC_SOCKETCALL, /* ia32's multiplexer: call in arg0, u32 args at arg1 */
	SC_MKNOD,      /* mode in arg1, dev in arg2 */
	SC_MKNODAT,    /* mode in arg2, dev in arg3 */
	SC_SENDTO,     /* fd in arg0, flags in arg3, sockaddr in arg4, its length in arg5: a connect with MSG_FASTOPEN */
	SC_SENDMSG,    /* fd in arg0, struct msghdr * in arg1, flags in arg2: a connect with MSG_FASTOPEN */
	SC_SENDMMSG,   /* fd in arg0, struct mmsghdr * in arg1, flags in arg3: a connect with MSG_FASTOPEN */
};

/* Escape techniques, the index of container_stats.escapes. */
enum technique {
	TECH_NONE = 0,
	TECH_MOUNT,
	TECH_NAMESPACE,
	TECH_CHROOT,
	TECH_PTRACE,
	TECH_KERNEL_MODULE,
	TECH_KERNEL_INTERFACE,
	TECH_RELEASE_AGENT,
	TECH_PROC_SYS_WRITE,
	TECH_RUNTIME_SOCKET,
	TECH_BLOCK_DEVICE,
	TECHNIQUES,
};

/* Operations of breakwater_namespace_operations_total. */
enum ns_op {
	NSOP_NONE = 0,
	NSOP_UNSHARE,
	NSOP_SETNS,
	NSOP_CLONE,
	NS_OPS,
};

/* Namespace types, the second index of container_stats.namespace_ops. */
enum ns_type {
	NS_MNT = 0,
	NS_PID,
	NS_NET,
	NS_USER,
	NS_UTS,
	NS_IPC,
	NS_CGROUP,
	NS_TIME,
	NS_TYPES,
};

/* Operations of breakwater_mount_operations_total. */
enum mount_op {
	MOUNTOP_NONE = 0,
	MOUNTOP_MOUNT,
	MOUNTOP_UMOUNT,
	MOUNTOP_PIVOT_ROOT,
	MOUNTOP_CHROOT,
	MOUNTOP_FSMOUNT,
	MOUNTOP_MOVE_MOUNT,
	MOUNTOP_OPEN_TREE,
	MOUNT_OPS,
};

/* Why a syscall counts as denied. */
enum deny_reason {
	DENY_SECCOMP = 1, /* refused by the seccomp filter: it never reached sys_enter */
	DENY_KERNEL = 2,  /* it ran and returned EPERM or EACCES itself */
};

/* What one syscall means, set by user space from its table before load. */
struct syscall_desc {
	u8 class;      /* enum syscall_class */
	u8 technique;  /* enum technique of an SC_PLAIN call; path and socket calls decide their own */
	u8 mount_op;   /* enum mount_op */
	u8 ns_op;      /* enum ns_op */
	u8 capability; /* the capability it needs, for kernels without cap_capable; 0xff: none */
	u8 pad[3];
};

/* Everything counted for one container, indexed by closed sets: a
 * container can fill its own entry, never another's. Keyed by the id of the
 * container's own cgroup (its "root"); sub-cgroups count here too. */
struct container_stats {
	u64 escapes[TECHNIQUES][2];                /* [technique][0 blocked, 1 allowed] */
	u64 namespace_ops[NS_OPS][NS_TYPES][2];    /* [op][type][0 denied, 1 allowed] */
	u64 mount_ops[MOUNT_OPS][2];               /* [op][0 denied, 1 allowed] */
	u64 capability_checks[CAP_SLOTS][2][2];    /* [cap][0 denied, 1 granted][0 host, 1 namespace] */
	u64 exec_caps;                             /* OR of host-scoped effective capabilities at exec */
	u64 syscalls[ABIS][SYSCALL_WORDS];         /* syscalls the container made, a bit per number */
	u64 denied_over[2];                        /* [reason-1] refused calls past the container's denied budget */
	u32 denied_keys;                           /* entries this container holds in `denied` */
	u32 subcgroups;                            /* sub-cgroups tracked for it */
	u32 uring_inflight;                        /* its io_uring requests tracked from submission to completion */
	u32 pad;
	s64 tasks;                                 /* its live tasks with a record: while any, user space keeps it */
};

/* A denied syscall by a container. */
struct denied_key {
	u64 container;
	u16 nr;
	u8 abi;
	u8 reason; /* enum deny_reason */
	u16 err;   /* positive errno */
	u16 pad;
};

/* A tracked cgroup: the container it belongs to (its own id for the
 * container's own cgroup). */
struct cgroup_rec {
	u64 container;
	u8 root; /* 1: the container's own cgroup; 0: a sub-cgroup */
	u8 pad[7];
};

/* Task flags. */
enum task_flag {
	TASK_RUNTIME = 1 << 0, /* entered the container from outside (or descends from such a task) and has not exec'd since */
	TASK_SELF = 1 << 1,    /* breakwater itself */
	TASK_ARMED = 1 << 2,   /* sys_enter has seen this task: a sys_exit without an entry is a seccomp refusal */
	TASK_ADOPTED = 1 << 3, /* first seen in a container's cgroup, not at its fork or cgroup move */
	TASK_CONTAINER = 1 << 4, /* ran, or descends from a task that ran, as the container's: for good */
	TASK_LIVE = 1 << 5,      /* counted in its container's live tasks */
};

/* Path and socket sub-classes of an outcome (and of an event). */
enum path_class {
	PATH_NONE = 0,
	PATH_PROC_SYS = 1,       /* /proc/sys/kernel/..., sysrq-trigger, binfmt_misc register, for writing */
	PATH_RELEASE_AGENT = 2,  /* a cgroup v1 release_agent or notify_on_release, for writing */
	PATH_BLOCK_DEVICE = 3,   /* a block device node, /dev/mem, /dev/kmem, /dev/port */
	PATH_RUNTIME_SOCKET = 4, /* a container runtime's API */
	PATH_UEVENT_HELPER = 5,  /* /sys/kernel/uevent_helper, for writing */
	PATH_PROC_MEM = 6,       /* another task's /proc/<pid>/mem, for writing */
	PATH_CLASSES = 7,
};

/* Where a counted syscall came from. */
enum origin {
	ORIGIN_SYSCALL = 0,
	ORIGIN_IO_URING = 1,
	ORIGIN_CAPABILITY = 2,
};

enum event_type {
	EVENT_SYSCALL = 1,
	EVENT_CGROUP_MKDIR = 2,
	EVENT_CGROUP_RMDIR = 3,
};

/* Reasons of breakwater_bpf_events_lost_total, one per budget. */
enum lost_reason {
	LOST_RINGBUF_FULL = 0,     /* the escape-event ring buffer */
	LOST_CGROUP_RINGBUF_FULL,  /* the cgroup ring buffer */
	LOST_CONTAINER_LIMIT,      /* the per-container map is full: a new container is not counted */
	LOST_SUBCGROUP_LIMIT,      /* a container made more sub-cgroups than its budget */
	LOST_TASK_STORAGE,         /* a task record could not be created */
	LOST_URING_MAP_FULL,       /* io_uring requests in flight overflowed their map */
	LOST_ARGS_UNREADABLE,      /* a call's arguments could be read neither at entry nor at exit */
	LOST_URING_BUDGET,         /* a container had more io_uring opens and connects in flight than its budget */
	LOST_REASONS,
};

/* One escape attempt, as the ring buffer carries it. */
struct syscall_event {
	u32 type;
	u32 tgid;
	u64 container;
	u64 ktime_ns;
	u64 repeats; /* the same attempt folded since the previous event of this key on this CPU */
	u16 nr;
	u8 abi;
	u8 origin;    /* enum origin */
	u8 technique; /* enum technique */
	u8 sub;       /* enum path_class */
	u16 err;      /* positive errno; 0: the attempt succeeded */
	char comm[COMM_LEN];
	char detail[DETAIL_LEN];
};

/* Event folding: one record per container, syscall, technique and result. */
struct fold_key {
	u64 container;
	u16 nr;
	u8 abi;
	u8 technique;
	u8 allowed;
	u8 pad[3];
};

/* Per key and CPU: when an event was last sent, and the repeats folded since. */
struct event_fold {
	u64 sent_ns;
	u64 repeats;
};

struct cgroup_event {
	u32 type;
	u32 level;
	u64 cgroup_id;
	u64 container; /* the container it was attributed to in the kernel; 0: none */
	char path[CGROUP_PATH_LEN];
};


/* A classified call between its entry and its exit. */
struct pending {
	u64 args[4]; /* what the exit needs: fds, user pointers, flags (see classify.h) */
	u16 nr;
	u8 abi;
	u8 class;     /* enum syscall_class; 0: nothing in flight */
	u8 technique; /* enum technique, when the entry already knows it */
	u8 ns_types;  /* bit per enum ns_type */
	u8 write;     /* an open for writing */
	u8 origin;    /* enum origin */
};

/* What breakwater knows of a task, kept in task storage: which container it
 * belongs to and how it got there, decided at fork, cgroup attach and exec
 * from the kernel's own view, never from anything the task names. */
struct task_rec {
	u64 container;  /* container's cgroup id; 0: the host */
	u64 setup_ns;   /* in set-up: the runtime's mount namespace it entered in, or 0 */
	u64 enter_hash; /* sc_args_hash of the call in flight, set at sys_enter */
	u32 flags;      /* enum task_flag */
	u16 enter_slot; /* syscall number of the call in flight */
	u8 enter_abi;
	u8 pad;
	u32 uring_skips; /* its io_uring requests in flight that post no completion on success */
	u32 pad2;
	u64 seen[ABIS][SYSCALL_WORDS]; /* syscalls the task made; the container's set learns each once */
	struct pending pending;
};

/* The inode of a Unix socket's file, kernel encoding of the device. */
struct sock_id {
	u64 ino;
	u32 dev;
	u32 pad;
};

/* An io_uring request of a counted task, from submission to completion. */
struct uring_req {
	u64 container;
	u64 owner;   /* the submitting task (an address, only compared) */
	u8 skip;     /* IOSQE_CQE_SKIP_SUCCESS: a success posts no completion */
	u8 pad[7];
	struct pending p;
	char detail[DETAIL_LEN]; /* the path, copied while the kernel still holds it */
};

#endif
