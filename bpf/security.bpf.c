// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
//go:build ignore

/*
 * breakwater's security probes. Baseline hooks only: raw tracepoints on
 * sys_enter, sys_exit, sched_process_exec, cgroup_mkdir and cgroup_rmdir.
 *
 * The kernel side aggregates: it counts outcomes of the syscalls that matter
 * in a per-CPU hash keyed by (cgroup id, syscall, sub-class, errno), and
 * leaves the naming (technique, capability, namespace) to user space tables.
 * Only cgroups in tracked_cgroups (kept current by user space) are counted,
 * so host processes pay an array lookup per syscall and nothing more.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EPERM 1
#define EACCES 13
#define AF_UNIX 1
#define S_IFMT 00170000
#define S_IFBLK 0060000
#define O_ACCMODE 00000003
#define O_CREAT 00000100
#define O_TRUNC 00001000
#define AT_FDCWD -100

#define CLONE_NEWTIME 0x00000080
#define CLONE_NEWNS 0x00020000
#define CLONE_NEWCGROUP 0x02000000
#define CLONE_NEWUTS 0x04000000
#define CLONE_NEWIPC 0x08000000
#define CLONE_NEWUSER 0x10000000
#define CLONE_NEWPID 0x20000000
#define CLONE_NEWNET 0x40000000

#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206

#define DETAIL_LEN 128 /* power of two: indexes are masked with DETAIL_LEN-1 */
#define CGROUP_PATH_LEN 256
#define COMM_LEN 16
#define SYSCALL_SLOTS 1024

/* Set by user space before load. */
const volatile u32 self_tgid = 0;
const volatile bool count_host = false;
/* Shortest gap between two escape events of one container with the same
 * syscall, sub-class and result; repeats within it are counted (the counters
 * are exact either way) but not sent. 0 sends every attempt. */
const volatile u64 event_interval_ns = 0;

/* What user space needs the kernel to work out about a syscall. */
enum syscall_class {
	SC_NONE = 0,
	SC_PLAIN,   /* counted as is: mount, bpf, init_module, ... */
	SC_UNSHARE, /* flags in arg0 */
	SC_CLONE,   /* flags in arg0; counted only with CLONE_NEW* */
	SC_CLONE3,  /* struct clone_args * in arg0 */
	SC_SETNS,   /* fd in arg0, nstype in arg1 */
	SC_PTRACE,  /* request in arg0; attach, seize and poke only */
	SC_OPEN,    /* path in arg0, flags in arg1 */
	SC_OPENAT,  /* path in arg1, flags in arg2 (openat2: struct open_how *) */
	SC_OPENAT2,
	SC_CONNECT, /* sockaddr in arg1 */
	SC_MKNOD,   /* mode in arg1 */
	SC_MKNODAT, /* mode in arg2 */
};

/* Sub-classes of path and socket syscalls. */
enum path_class {
	PATH_NONE = 0,
	PATH_PROC_SYS = 1,      /* /proc/sys/kernel/... or /proc/sysrq-trigger for writing */
	PATH_RELEASE_AGENT = 2, /* release_agent or notify_on_release for writing */
	PATH_BLOCK_DEVICE = 3,  /* a host block device or /dev/mem, /dev/kmem */
	PATH_RUNTIME_SOCKET = 4,
};

/* Namespace bits of the sub-class of unshare, clone, clone3 and setns. */
enum ns_bit {
	NS_MNT = 1 << 0,
	NS_PID = 1 << 1,
	NS_NET = 1 << 2,
	NS_USER = 1 << 3,
	NS_UTS = 1 << 4,
	NS_IPC = 1 << 5,
	NS_CGROUP = 1 << 6,
	NS_TIME = 1 << 7,
};

enum cgroup_state {
	CGROUP_PENDING = 1, /* created; the runtime is still setting it up */
	CGROUP_ACTIVE = 2,  /* the container's first exec happened: count */
};

enum counter_kind {
	KIND_DENIED = 1,  /* any syscall failing with EPERM or EACCES */
	KIND_OUTCOME = 2, /* a classified syscall, whatever its result */
};

enum event_type {
	EVENT_SYSCALL = 1,
	EVENT_CGROUP_MKDIR = 2,
	EVENT_CGROUP_RMDIR = 3,
};

enum lost_reason {
	LOST_RINGBUF_FULL = 0,
	LOST_COUNTER_MAP_FULL = 1,
	LOST_PENDING_MAP_FULL = 2,
	LOST_CAPS_MAP_FULL = 3,
	LOST_TRACKED_MAP_FULL = 4,
	LOST_REASONS = 5,
};

struct counter_key {
	u64 cgroup_id;
	u16 kind;
	u16 nr;
	u16 sub;
	u16 err; /* positive errno; 0 for success */
};

struct pending {
	u32 nr;
	u16 sub;
	u16 class;
	char detail[DETAIL_LEN];
};

struct syscall_event {
	u32 type;
	u32 tgid;
	u64 cgroup_id;
	u64 ktime_ns;
	u16 nr;
	u16 sub;
	u16 err;
	u16 pad;
	u64 repeats; /* the same attempt folded since the previous event of this key on this CPU */
	char comm[COMM_LEN];
	char detail[DETAIL_LEN];
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
	char path[CGROUP_PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* resized by user space to --collector.security.max-containers */
	__type(key, u64);
	__type(value, u8);
} tracked_cgroups SEC(".maps");

/* enum syscall_class by syscall number, filled by user space before load:
 * a plain load on the hot path, no map lookup. */
const volatile u8 syscall_classes[SYSCALL_SLOTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct counter_key);
	__type(value, u64);
} counters SEC(".maps");

/* OR of the effective capabilities of every exec in a container. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, u64);
} exec_caps SEC(".maps");

/* Classified syscalls between entry and exit, by pid_tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u64);
	__type(value, struct pending);
} pending_calls SEC(".maps");

/* Number of entries in pending_calls: while it is zero, sys_exit has nothing
 * to look up unless the call was denied. One read-mostly cache line. */
s64 inflight = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOST_REASONS);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Event folding by escape event key (a KIND_OUTCOME counter key), per CPU so
 * that a storm on several CPUs shares no cache line. LRU: a forgotten key
 * costs one extra event, and its folded repeats are still in the counters and
 * events_folded. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct counter_key);
	__type(value, struct event_fold);
} event_sent SEC(".maps");

/* Escape events folded by event_interval_ns. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} events_folded SEC(".maps");

/* Cgroup creation and removal have a ring buffer of their own, so that a
 * flood of escape events from one container cannot hide another's start. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} cgroup_events SEC(".maps");

/* Scratch space for a cgroup event, too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cgroup_event);
} cgroup_scratch SEC(".maps");

/* Force BTF for the types user space decodes. */
const struct syscall_event *unused_syscall_event __attribute__((unused));
const struct cgroup_event *unused_cgroup_event __attribute__((unused));
const struct event_fold *unused_event_fold __attribute__((unused));
const enum syscall_class *unused_syscall_class __attribute__((unused));
const enum path_class *unused_path_class __attribute__((unused));
const enum lost_reason *unused_lost_reason __attribute__((unused));
const enum ns_bit *unused_ns_bit __attribute__((unused));
const enum cgroup_state *unused_cgroup_state __attribute__((unused));
const enum counter_kind *unused_counter_kind __attribute__((unused));
const enum event_type *unused_event_type __attribute__((unused));

static __always_inline void count_lost(u32 reason)
{
	u64 *v = bpf_map_lookup_elem(&lost, &reason);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void count(struct counter_key *key)
{
	u64 one = 1;
	u64 *v = bpf_map_lookup_elem(&counters, key);
	if (v) {
		/* Atomic even per CPU: a preempted program may share the slot. */
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&counters, key, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&counters, key); /* lost a race to create it */
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	count_lost(LOST_COUNTER_MAP_FULL);
}

/* runc, crun and their init stages set up every container and enter it on
 * docker exec; what they do there is the runtime's work, not an attempt. */
static __always_inline bool runtime_helper(void)
{
	char comm[COMM_LEN] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] == 'r' && comm[1] == 'u' && comm[2] == 'n' && comm[3] == 'c')
		return true; /* runc, runc:[0:PARENT], runc:[1:CHILD], runc:[2:INIT] */
	if (comm[0] == 'c' && comm[1] == 'r' && comm[2] == 'u' && comm[3] == 'n' && comm[4] == 0)
		return true;
	/* runc re-executes itself as /proc/self/exe before renaming. */
	if (comm[0] == 'e' && comm[1] == 'x' && comm[2] == 'e' && comm[3] == 0)
		return true;
	return false;
}

/* counted_cgroup reports whether the current task is counted, and its cgroup. */
static __always_inline bool counted_cgroup(u64 *cgroup_id)
{
	u64 id = bpf_get_current_cgroup_id();
	u8 *state = bpf_map_lookup_elem(&tracked_cgroups, &id);
	if (!state) {
		if (!count_host || (bpf_get_current_pid_tgid() >> 32) == self_tgid)
			return false;
	} else if (*state != CGROUP_ACTIVE) {
		return false;
	}
	if (runtime_helper())
		return false;
	*cgroup_id = id;
	return true;
}

static __always_inline u16 ns_bits(u64 flags)
{
	u16 bits = 0;
	if (flags & CLONE_NEWNS)
		bits |= NS_MNT;
	if (flags & CLONE_NEWPID)
		bits |= NS_PID;
	if (flags & CLONE_NEWNET)
		bits |= NS_NET;
	if (flags & CLONE_NEWUSER)
		bits |= NS_USER;
	if (flags & CLONE_NEWUTS)
		bits |= NS_UTS;
	if (flags & CLONE_NEWIPC)
		bits |= NS_IPC;
	if (flags & CLONE_NEWCGROUP)
		bits |= NS_CGROUP;
	if (flags & CLONE_NEWTIME)
		bits |= NS_TIME;
	return bits;
}

/* The namespace type behind a setns fd, read from the nsfs inode. */
static __always_inline u16 setns_fd_bits(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file *f = 0;
	void *ns;
	u32 type = 0;

	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	if (bpf_core_read(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	ns = BPF_CORE_READ(f, f_inode, i_private);
	if (!ns)
		return 0;
	if (bpf_core_field_exists(struct ns_common, ns_type))
		type = BPF_CORE_READ((struct ns_common *)ns, ns_type);
	else
		type = BPF_CORE_READ((struct ns_common___pre618 *)ns, ops, type);
	return ns_bits(type);
}

#define MATCH(buf, off, lit) match_at(buf, off, lit, sizeof(lit))

/* match_at compares buf[off:] with a NUL-terminated literal of n bytes
 * including the NUL when exact, or its n-1 leading bytes as a prefix. */
static __always_inline bool match_prefix(const char *buf, u32 off, const char *lit, u32 n)
{
#pragma unroll
	for (u32 i = 0; i < 24; i++) {
		if (i >= n - 1)
			return true;
		if (buf[(off + i) & (DETAIL_LEN - 1)] != lit[i])
			return false;
	}
	return false;
}

static __always_inline bool match_exact(const char *buf, u32 off, const char *lit, u32 n)
{
	return match_prefix(buf, off, lit, n) && buf[(off + n - 1) & (DETAIL_LEN - 1)] == 0;
}

/* base_is reports whether the path of length len (without its NUL) ends in
 * the path component lit; sizeof(lit) is n. Paths longer than the buffer are
 * cut, so their last component is not seen: a documented limit. */
static __always_inline bool base_is(const char *buf, long len, const char *lit, u32 n)
{
	long start = len - (long)(n - 1);
	if (start < 0 || len >= DETAIL_LEN - 1)
		return false;
	if (start > 0 && buf[(start - 1) & (DETAIL_LEN - 1)] != '/')
		return false;
	return match_prefix(buf, (u32)start, lit, n);
}

#define PREFIX(lit) match_prefix(buf, 0, lit, sizeof(lit))
#define EXACT(lit) match_exact(buf, 0, lit, sizeof(lit))
#define BASE_IS(lit) base_is(buf, len, lit, sizeof(lit))

static __always_inline u16 classify_open_path(const char *buf, long len, u64 flags)
{
	bool write = (flags & O_ACCMODE) != 0 || (flags & (O_CREAT | O_TRUNC));

	if (PREFIX("/dev/")) {
		if (PREFIX("/dev/sd") || PREFIX("/dev/vd") || PREFIX("/dev/nvme") || PREFIX("/dev/xvd") ||
		    PREFIX("/dev/dm-") || EXACT("/dev/mem") || EXACT("/dev/kmem"))
			return PATH_BLOCK_DEVICE;
		return PATH_NONE;
	}
	if (!write)
		return PATH_NONE;
	if (PREFIX("/proc/sys/kernel/") || EXACT("/proc/sysrq-trigger"))
		return PATH_PROC_SYS;
	if (BASE_IS("release_agent") || BASE_IS("notify_on_release"))
		return PATH_RELEASE_AGENT;
	return PATH_NONE;
}

static __always_inline u16 classify_socket(const char *buf, long len)
{
	if (BASE_IS("docker.sock") || BASE_IS("containerd.sock") || BASE_IS("crio.sock") ||
	    BASE_IS("podman.sock"))
		return PATH_RUNTIME_SOCKET;
	return PATH_NONE;
}

static __always_inline u64 arg(struct pt_regs *regs, int n)
{
	switch (n) {
	case 0:
		return BPF_CORE_READ(regs, di);
	case 1:
		return BPF_CORE_READ(regs, si);
	case 2:
		return BPF_CORE_READ(regs, dx);
	default:
		return BPF_CORE_READ(regs, r10);
	}
}

/* classify fills p for a syscall of the given class and reports whether the
 * call is one breakwater counts. It runs at entry, and at exit for calls
 * seccomp denied before the entry tracepoint. */
static __always_inline bool classify(struct pt_regs *regs, u8 class, struct pending *p)
{
	u64 flags;
	long len;

	p->class = class;
	p->sub = 0;
	switch (class) {
	case SC_PLAIN:
		return true;
	case SC_UNSHARE:
		p->sub = ns_bits(arg(regs, 0));
		return true;
	case SC_CLONE:
		p->sub = ns_bits(arg(regs, 0));
		return p->sub != 0;
	case SC_CLONE3:
		flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (void *)arg(regs, 0));
		p->sub = ns_bits(flags);
		return p->sub != 0;
	case SC_SETNS:
		p->sub = ns_bits(arg(regs, 1));
		if (!p->sub)
			p->sub = setns_fd_bits((int)arg(regs, 0));
		return true;
	case SC_PTRACE:
		flags = arg(regs, 0);
		return flags == PTRACE_ATTACH || flags == PTRACE_SEIZE || flags == PTRACE_POKETEXT ||
		       flags == PTRACE_POKEDATA || flags == PTRACE_POKEUSR;
	case SC_OPEN:
		len = bpf_probe_read_user_str(p->detail, DETAIL_LEN, (void *)arg(regs, 0)) - 1;
		if (len <= 0)
			return false;
		p->sub = classify_open_path(p->detail, len, arg(regs, 1));
		return p->sub != PATH_NONE;
	case SC_OPENAT:
		len = bpf_probe_read_user_str(p->detail, DETAIL_LEN, (void *)arg(regs, 1)) - 1;
		if (len <= 0)
			return false;
		p->sub = classify_open_path(p->detail, len, arg(regs, 2));
		return p->sub != PATH_NONE;
	case SC_OPENAT2:
		len = bpf_probe_read_user_str(p->detail, DETAIL_LEN, (void *)arg(regs, 1)) - 1;
		if (len <= 0)
			return false;
		flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (void *)arg(regs, 2)); /* open_how.flags */
		p->sub = classify_open_path(p->detail, len, flags);
		return p->sub != PATH_NONE;
	case SC_CONNECT: {
		u16 family = 0;
		char *addr = (char *)arg(regs, 1);
		if (bpf_probe_read_user(&family, sizeof(family), addr) || family != AF_UNIX)
			return false;
		len = bpf_probe_read_user_str(p->detail, DETAIL_LEN, addr + 2) - 1;
		if (len <= 0)
			return false; /* abstract or unnamed */
		p->sub = classify_socket(p->detail, len);
		return p->sub != PATH_NONE;
	}
	case SC_MKNOD:
		return (arg(regs, 1) & S_IFMT) == S_IFBLK;
	case SC_MKNODAT:
		return (arg(regs, 2) & S_IFMT) == S_IFBLK;
	}
	return false;
}

static __always_inline void record(u64 cgroup_id, u32 nr, struct pending *p, long ret)
{
	u16 err = ret < 0 ? (u16)(-ret) : 0;
	struct counter_key key = {
		.cgroup_id = cgroup_id,
		.kind = KIND_OUTCOME,
		.nr = nr,
		.sub = p->sub,
		.err = err,
	};
	struct syscall_event *e;

	u64 now = bpf_ktime_get_boot_ns();

	count(&key);

	/* A storm of one attempt costs counter increments, not a ring-buffer
	 * record (and a wakeup of the reader) per call. */
	struct event_fold *fold = 0;
	if (event_interval_ns) {
		fold = bpf_map_lookup_elem(&event_sent, &key);
		if (fold && now - fold->sent_ns < event_interval_ns) {
			u32 zero = 0;
			u64 *folded = bpf_map_lookup_elem(&events_folded, &zero);
			if (folded)
				__sync_fetch_and_add(folded, 1);
			/* Atomic even per CPU: a preempted program may share it. */
			__sync_fetch_and_add(&fold->repeats, 1);
			return;
		}
	}

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(LOST_RINGBUF_FULL);
		return; /* the repeats wait for the next event */
	}
	e->repeats = 0;
	if (fold) {
		/* Hand over what was folded; what folds meanwhile stays. */
		u64 n = fold->repeats;
		__sync_fetch_and_add(&fold->repeats, -n);
		fold->sent_ns = now;
		e->repeats = n;
	} else if (event_interval_ns) {
		struct event_fold first = {.sent_ns = now};
		bpf_map_update_elem(&event_sent, &key, &first, BPF_NOEXIST);
	}
	e->type = EVENT_SYSCALL;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->cgroup_id = cgroup_id;
	e->ktime_ns = now;
	e->nr = nr;
	e->sub = p->sub;
	e->err = err;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->detail, p->detail, DETAIL_LEN);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline u8 class_of(u32 nr)
{
	return nr < SYSCALL_SLOTS ? syscall_classes[nr] : SC_NONE;
}

SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	u32 nr = (u32)ctx->args[1];
	u8 class = class_of(nr);
	struct pending p = {};
	u64 cgroup_id, id;

	if (class == SC_NONE) /* the fast path of nearly every syscall */
		return 0;
	if (!counted_cgroup(&cgroup_id))
		return 0;
	p.nr = nr;
	if (!classify((struct pt_regs *)ctx->args[0], class, &p))
		return 0;
	id = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&pending_calls, &id, &p, BPF_ANY)) {
		count_lost(LOST_PENDING_MAP_FULL);
		return 0;
	}
	__sync_fetch_and_add(&inflight, 1);
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	long ret = (long)ctx->args[1];
	bool denied = ret == -EPERM || ret == -EACCES;
	struct pt_regs *regs;
	struct pending *p = 0;
	struct pending local = {};
	u64 cgroup_id, id;
	u32 nr;
	bool pending = *(volatile s64 *)&inflight > 0;

	if (!denied && !pending) /* the fast path of nearly every syscall */
		return 0;

	id = bpf_get_current_pid_tgid();
	if (pending) {
		p = bpf_map_lookup_elem(&pending_calls, &id);
		if (p) {
			local = *p;
			if (bpf_map_delete_elem(&pending_calls, &id) == 0)
				__sync_fetch_and_add(&inflight, -1);
			p = &local;
		}
	}
	if (!p && !denied)
		return 0;
	if (!counted_cgroup(&cgroup_id))
		return 0;

	regs = (struct pt_regs *)ctx->args[0];
	if (p) {
		nr = p->nr;
	} else {
		/* No entry record: the call never reached sys_enter (seccomp) or
		 * is not classified; classify it now from its registers. */
		nr = (u32)BPF_CORE_READ(regs, orig_ax);
		local.nr = nr;
		if (classify(regs, class_of(nr), &local))
			p = &local;
	}
	if (p)
		record(cgroup_id, nr, p, ret);
	if (denied) {
		struct counter_key key = {
			.cgroup_id = cgroup_id,
			.kind = KIND_DENIED,
			.nr = (u16)nr,
			.err = (u16)(-ret),
		};
		count(&key);
	}
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int sched_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	u64 id = bpf_get_current_cgroup_id();
	u8 *state = bpf_map_lookup_elem(&tracked_cgroups, &id);
	struct task_struct *task;
	const struct cred *cred;
	u64 caps = 0, *seen;

	if (!state || runtime_helper())
		return 0;
	/* The first exec of something other than the runtime starts the container. */
	if (*state == CGROUP_PENDING)
		*state = CGROUP_ACTIVE;

	task = (struct task_struct *)bpf_get_current_task();
	cred = BPF_CORE_READ(task, cred);
	bpf_core_read(&caps, sizeof(caps), &cred->cap_effective);
	seen = bpf_map_lookup_elem(&exec_caps, &id);
	if (seen) {
		__sync_fetch_and_or(seen, caps);
		return 0;
	}
	if (bpf_map_update_elem(&exec_caps, &id, &caps, BPF_NOEXIST)) {
		seen = bpf_map_lookup_elem(&exec_caps, &id);
		if (seen)
			__sync_fetch_and_or(seen, caps);
		else
			count_lost(LOST_CAPS_MAP_FULL);
	}
	return 0;
}

#define PATH_AT(i) e->path[(i) & (CGROUP_PATH_LEN - 1)]

/* container_path reports whether a cgroup path names a container: its last
 * component is, or ends in, a 64-hex id, as /docker/<id>,
 * docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope and
 * kubepods/.../pod<uid>/<id> do. User space parses the path in full; the
 * kernel only needs to know early, so that counting can start at the first
 * exec however fast it comes. Branch-free, so the verifier sees one path. */
static __always_inline bool container_path(struct cgroup_event *e, long len)
{
	long end = len;
	u32 bad = 0;
	char c;

	if (len >= 6 && PATH_AT(len - 6) == '.' && PATH_AT(len - 5) == 's' && PATH_AT(len - 4) == 'c' &&
	    PATH_AT(len - 3) == 'o' && PATH_AT(len - 2) == 'p' && PATH_AT(len - 1) == 'e')
		end = len - 6;
	if (end < 65 || end >= CGROUP_PATH_LEN)
		return false;
	for (int i = 0; i < 64; i++) {
		u8 ch = (u8)PATH_AT(end - 64 + i);
		bad |= ((u8)(ch - '0') >= 10) & ((u8)(ch - 'a') >= 6);
	}
	c = PATH_AT(end - 65);
	return !bad && (c == '/' || c == '-');
}

static __always_inline int cgroup_event(struct bpf_raw_tracepoint_args *ctx, u32 type)
{
	struct cgroup *cgrp = (struct cgroup *)ctx->args[0];
	struct cgroup_event *e;
	u8 pending = CGROUP_PENDING;
	u32 zero = 0;
	long len;

	/* Only the unified (v2) hierarchy: its ids are what syscalls report. */
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0;
	e = bpf_map_lookup_elem(&cgroup_scratch, &zero);
	if (!e)
		return 0;
	e->type = type;
	e->level = BPF_CORE_READ(cgrp, level);
	e->cgroup_id = BPF_CORE_READ(cgrp, kn, id);
	len = bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx->args[1]) - 1;
	/* Tracking starts here, in the kernel, whatever becomes of the record. */
	if (type == EVENT_CGROUP_MKDIR && len > 0 && container_path(e, len)) {
		if (bpf_map_update_elem(&tracked_cgroups, &e->cgroup_id, &pending, BPF_NOEXIST) == -7 /* E2BIG */)
			count_lost(LOST_TRACKED_MAP_FULL);
	}
	if (bpf_ringbuf_output(&cgroup_events, e, sizeof(*e), 0))
		count_lost(LOST_RINGBUF_FULL);
	return 0;
}

SEC("raw_tracepoint/cgroup_mkdir")
int cgroup_mkdir(struct bpf_raw_tracepoint_args *ctx)
{
	return cgroup_event(ctx, EVENT_CGROUP_MKDIR);
}

SEC("raw_tracepoint/cgroup_rmdir")
int cgroup_rmdir(struct bpf_raw_tracepoint_args *ctx)
{
	return cgroup_event(ctx, EVENT_CGROUP_RMDIR);
}
