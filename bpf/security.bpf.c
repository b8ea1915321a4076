// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
//go:build ignore

/*
 * breakwater's security programs, on BTF tracepoints: sys_enter, sys_exit,
 * task_newtask, sched_process_exec, sched_process_exit, cgroup_mkdir,
 * cgroup_rmdir, cgroup_attach_task, and where the kernel has them
 * cap_capable and the io_uring submission and completion tracepoints.
 *
 * Who is counted is decided per task, in task storage, from the kernel's
 * own view: a task belongs to the container whose cgroup it was born or
 * moved into; a task the host moved into a container (the runtime setting
 * it up, docker exec) is exempt until it executes something; breakwater is
 * never counted. Once a task is the container's it stays so, and so does
 * every task it makes (threads, children, the kernel's io_uring workers):
 * a name, a path, a cgroup move or a helper changes none of it.
 *
 * The kernel aggregates: per container a fixed record of counters indexed
 * by closed sets (techniques, operations, capabilities), and denied
 * syscalls in a map with a budget per container. User space names them.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "types.h"
#include "arch.h"
#include "classify.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";


#define CAP_SYS_ADMIN 21
#define DESC_VM_ACCOUNTING 0x1 /* syscall_desc.pad[0]: the call may charge memory (mmap, brk, fork, execve, ...) */
#define IORING_OP_CONNECT 16
#define IORING_OP_OPENAT 18
#define IORING_OP_OPENAT2 28

/* Set by user space before load. */
const volatile struct syscall_desc syscall_descs[ABIS][SYSCALL_SLOTS] = {};
const volatile bool count_host = false;
/* Shortest gap between two escape events of one container with the same
 * syscall, technique and result; repeats within it are counted (the
 * counters are exact either way) but not sent. 0 sends every attempt. */
const volatile u64 event_interval_ns = 0;
const volatile u32 denied_budget = 128;
const volatile u32 subcgroup_budget = 64;
const volatile u32 uring_budget = 256;
/* The native numbers of openat, openat2 and connect, which io_uring's
 * operations are counted as. */
const volatile u16 uring_nr_openat = 0;
const volatile u16 uring_nr_openat2 = 0;
const volatile u16 uring_nr_connect = 0;

/* Where the kernel's functions that check capabilities without auditing
 * them (ns_capable_noaudit, cap_vm_enough_memory, ...) sit, from kallsyms:
 * a check called from one of them is the kernel asking for itself. */
struct addr_range {
	u64 start, end;
};
#define NOAUDIT_RANGES 8
#define STACK_DEPTH 6 /* the tracepoint, cap_capable, security_capable, its caller: deep enough */
const volatile struct addr_range noaudit_ranges[NOAUDIT_RANGES] = {};

/* Set by user space while running. */
volatile bool cap_inferred = false; /* no cap_capable tracepoint: infer checks from syscall results */
volatile u32 self_tgid = 0;         /* breakwater's host tgid, where user space knows it */

/* Bumped whenever a task's verdict may change, so that no CPU keeps a
 * stale one in cpu_cache. */
u64 cache_gen = 0;
/* Classified calls between entry and exit: while zero, a successful
 * sys_exit has nothing to do. */
s64 inflight = 0;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_rec);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* resized by user space */
	__type(key, u64);
	__type(value, struct cgroup_rec);
} tracked_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* --collector.security.max-containers */
	__type(key, u64);
	__type(value, struct container_stats);
} containers SEC(".maps");

/* Never written: the zero record a new container starts from. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct container_stats);
} zero_stats SEC(".maps");

/* Not preallocated: sized for every container's whole budget, it holds
 * only the keys containers made. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536); /* resized by user space */
	__type(key, struct denied_key);
	__type(value, u64);
} denied SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOST_REASONS);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 * 1024);
} events SEC(".maps");

/* Event folding, per CPU so that a storm on several CPUs shares no cache
 * line. LRU: a forgotten key costs one extra event. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fold_key);
	__type(value, struct event_fold);
} event_sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} events_folded SEC(".maps");

/* Cgroup creation and removal have a ring buffer of their own, so that a
 * flood of escape events cannot hide a container's start. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} cgroup_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cgroup_event);
} cgroup_scratch SEC(".maps");

/* Per CPU: whether the task whose syscall registers sit at `regs` is one
 * breakwater skips. The fast path of every host syscall is this lookup. */
struct cpu_cache {
	u64 regs;
	u64 gen;
	u64 skip;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_cache);
} cpu_cache SEC(".maps");

/* io_uring requests in flight, by request. Not an LRU: nothing is evicted
 * unseen; each container has a budget of them (uring_budget), so one
 * container's flood takes no other's room. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536); /* resized by user space: max-containers x uring_budget */
	__type(key, u64);
	__type(value, struct uring_req);
} uring_reqs SEC(".maps");

#define REGS_BUF 512 /* holds any architecture's struct pt_regs */

struct regs_buf {
	u8 b[REGS_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct regs_buf);
} regs_scratch SEC(".maps");

struct stack_buf {
	u64 ips[STACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct stack_buf);
} stack_scratch SEC(".maps");

/* Room for one io_uring request: too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct uring_req);
} uring_scratch SEC(".maps");

/* Force BTF for the types user space decodes. */
const struct syscall_event *unused_syscall_event __attribute__((unused));
const struct cgroup_event *unused_cgroup_event __attribute__((unused));
const enum abi *unused_abi __attribute__((unused));
const enum syscall_class *unused_syscall_class __attribute__((unused));
const enum technique *unused_technique __attribute__((unused));
const enum ns_op *unused_ns_op __attribute__((unused));
const enum ns_type *unused_ns_type __attribute__((unused));
const enum mount_op *unused_mount_op __attribute__((unused));
const enum deny_reason *unused_deny_reason __attribute__((unused));
const enum task_flag *unused_task_flag __attribute__((unused));
const enum path_class *unused_path_class __attribute__((unused));
const enum origin *unused_origin __attribute__((unused));
const enum event_type *unused_event_type __attribute__((unused));
const enum lost_reason *unused_lost_reason __attribute__((unused));

static __always_inline void count_lost(u32 reason)
{
	u64 *v = bpf_map_lookup_elem(&lost, &reason);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void bump_gen(void)
{
	__sync_fetch_and_add(&cache_gen, 1);
}

static __always_inline const volatile struct syscall_desc *desc_of(u8 abi, u32 slot)
{
	if (abi >= ABIS)
		return 0;
	return &syscall_descs[abi][slot & (SYSCALL_SLOTS - 1)];
}

/* stats_of returns a container's counters; the host's (container 0) are
 * made on first use when host counting is on. */
static __always_inline struct container_stats *stats_of(u64 container)
{
	struct container_stats *st = bpf_map_lookup_elem(&containers, &container);
	struct container_stats *z;
	u32 zero = 0;

	if (st || container != 0 || !count_host)
		return st;
	z = bpf_map_lookup_elem(&zero_stats, &zero);
	if (!z)
		return 0;
	bpf_map_update_elem(&containers, &container, z, BPF_NOEXIST);
	return bpf_map_lookup_elem(&containers, &container);
}

static __always_inline u64 task_cgroup_id(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

/* is_self reports whether a task is a thread of breakwater: user space
 * marks its thread group leader before the programs attach. */
static __always_inline bool is_self(struct task_struct *t)
{
	struct task_rec *lr;

	if (self_tgid && t->tgid == self_tgid)
		return true;
	lr = bpf_task_storage_get(&tasks, t->group_leader, 0, 0);
	return lr && (lr->flags & TASK_SELF);
}

/* set_container moves a task's record to a container, keeping each
 * container's count of live tasks, which keeps its counters in user space
 * for as long as any of them runs. */
static __always_inline void set_container(struct task_rec *r, u64 container)
{
	struct container_stats *st;

	if ((r->flags & TASK_LIVE) && r->container == container)
		return;
	if (r->flags & TASK_LIVE) {
		st = bpf_map_lookup_elem(&containers, &r->container);
		if (st)
			__sync_fetch_and_add(&st->tasks, -1);
		r->flags &= ~TASK_LIVE;
	}
	r->container = container;
	if (!container)
		return;
	st = bpf_map_lookup_elem(&containers, &container);
	if (st) {
		__sync_fetch_and_add(&st->tasks, 1);
		r->flags |= TASK_LIVE;
	}
}

static __always_inline struct task_rec *new_record(struct task_struct *t, u64 container, u32 flags)
{
	struct task_rec *r = bpf_task_storage_get(&tasks, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!r) {
		count_lost(LOST_TASK_STORAGE);
		return 0;
	}
	if (r->flags & TASK_LIVE)
		set_container(r, 0); /* a record made anew */
	r->container = 0;
	r->setup_ns = 0;
	r->flags = flags & ~TASK_LIVE;
	r->enter_hash = 0;
	r->pending.class = SC_NONE;
	set_container(r, container);
	return r;
}

static __always_inline bool counted(struct task_rec *r)
{
	return r && !(r->flags & (TASK_RUNTIME | TASK_SELF));
}

static __always_inline u64 mount_ns(struct task_struct *t)
{
	return (u64)BPF_CORE_READ(t, nsproxy, mnt_ns);
}

/* runtime_ns is the mount namespace a task entering set-up still shares
 * with the host process that put it in the container, or 0 when it is
 * elsewhere (runc exec joins the container's before its cgroup). While the
 * task stays there it executes only what the runtime chose on the host:
 * runc 1.1 re-executes itself from a sealed copy just as it is moved. */
static __always_inline u64 runtime_ns(struct task_struct *t, struct task_struct *by)
{
	u64 ns = mount_ns(t);

	return ns && ns == mount_ns(by) ? ns : 0;
}

/* adopt makes the record of a task breakwater has not seen yet that is in
 * a container's cgroup: one that was there before the programs attached,
 * or whose move left no record (its tracepoint not reached yet, or no
 * memory for the record then). Its parent says where it came from, as the
 * move would have: a parent outside the container whose mount namespace
 * the task still shares is the runtime setting the container up (a
 * container's own processes never run in the host's mount namespace, and
 * every process of the container descends from one that did not). */
static __always_inline struct task_rec *adopt(struct task_struct *t, u64 container)
{
	struct task_struct *parent = t->group_leader->real_parent;
	struct task_rec *pr, *r;
	struct cgroup_rec *pc;
	u64 cg, ns;

	pr = bpf_task_storage_get(&tasks, parent, 0, 0);
	if (pr && counted(pr) && pr->container == container)
		return new_record(t, container, TASK_ADOPTED);
	cg = task_cgroup_id(parent);
	pc = bpf_map_lookup_elem(&tracked_cgroups, &cg);
	if (pc && pc->container == container)
		return new_record(t, container, TASK_ADOPTED);
	ns = runtime_ns(t, parent);
	if (!ns)
		return new_record(t, container, TASK_ADOPTED);
	r = new_record(t, container, TASK_ADOPTED | TASK_RUNTIME);
	if (r)
		r->setup_ns = ns;
	return r;
}

/* record_of returns a task's record, making it for a task breakwater has
 * not seen yet: its cgroup says which container it is in. Host tasks get
 * none unless host counting is on. */
static __always_inline struct task_rec *record_of(struct task_struct *t)
{
	struct task_rec *r = bpf_task_storage_get(&tasks, t, 0, 0);
	struct cgroup_rec *c;
	u64 cg;

	if (r)
		return r;
	if (is_self(t))
		return new_record(t, 0, TASK_SELF);
	cg = task_cgroup_id(t);
	c = bpf_map_lookup_elem(&tracked_cgroups, &cg);
	if (c)
		return adopt(t, c->container);
	if (count_host)
		return new_record(t, 0, 0);
	return 0;
}

/* mark_seen adds a syscall to the task's set and, the first time, to its
 * container's. */
static __always_inline void mark_seen(struct task_rec *r, u8 abi, u32 slot)
{
	u32 w = (slot >> 6) & (SYSCALL_WORDS - 1);
	u64 bit = 1ULL << (slot & 63);
	struct container_stats *st;

	if (abi >= ABIS || (r->seen[abi][w] & bit))
		return;
	r->seen[abi][w] |= bit;
	st = stats_of(r->container);
	if (st)
		__sync_fetch_and_or(&st->syscalls[abi][w], bit);
}

enum socketcall_args {
	SOCKETCALL_RESOLVED = 0,       /* p is now the call it stands for */
	SOCKETCALL_UNREADABLE,         /* p stays SC_SOCKETCALL: its block could not be read */
	SOCKETCALL_NOT_CONNECTING,     /* a send without fast open */
};

/* socketcall_args reads the argument block of an ia32 socketcall (call
 * number in args[2], block in args[3]) into p, as the call it stands for. */
static __always_inline u8 socketcall_args(struct pending *p)
{
	u32 a[6] = {};
	u32 call = (u32)p->args[2];
	long err;

	if (call == SYS_SENDTO)
		err = bpf_probe_read_user(a, 6 * sizeof(u32), (void *)p->args[3]);
	else if (call == SYS_SENDMMSG)
		err = bpf_probe_read_user(a, 4 * sizeof(u32), (void *)p->args[3]);
	else
		err = bpf_probe_read_user(a, 3 * sizeof(u32), (void *)p->args[3]);
	if (err)
		return SOCKETCALL_UNREADABLE;
	p->args[0] = (u64)(s64)(int)a[0];
	p->args[1] = a[1];
	switch (call) {
	case SYS_CONNECT:
		p->class = SC_CONNECT;
		p->args[2] = (u64)(s64)(int)a[2];
		return SOCKETCALL_RESOLVED;
	case SYS_SENDTO:
		p->class = SC_SENDTO;
		p->args[1] = a[4];
		p->args[2] = (u64)(s64)(int)a[5];
		return (a[3] & MSG_FASTOPEN) ? SOCKETCALL_RESOLVED : SOCKETCALL_NOT_CONNECTING;
	case SYS_SENDMSG:
		p->class = SC_SENDMSG;
		return (a[2] & MSG_FASTOPEN) ? SOCKETCALL_RESOLVED : SOCKETCALL_NOT_CONNECTING;
	}
	p->class = SC_SENDMMSG;
	return (a[3] & MSG_FASTOPEN) ? SOCKETCALL_RESOLVED : SOCKETCALL_NOT_CONNECTING;
}

/* msg_name reads where a struct msghdr (or an mmsghdr's first) sends to:
 * its msg_name and msg_namelen, in the caller's ABI. */
static __always_inline void msg_name(struct pending *p)
{
	struct {
		u64 name;
		s32 len;
	} m = {};
	u32 m32[2] = {};

	if (p->abi == ABI_COMPAT) {
		if (bpf_probe_read_user(m32, sizeof(m32), (void *)p->args[1]) == 0) {
			m.name = m32[0];
			m.len = (s32)m32[1];
		}
	} else {
		bpf_probe_read_user(&m, sizeof(m), (void *)p->args[1]);
	}
	p->args[1] = m.name;
	p->args[2] = (u64)(s64)m.len;
}

/* classify_enter fills p for a syscall of a class breakwater looks at and
 * reports whether the call may be an outcome worth counting. It runs at
 * entry, and at exit for calls the seccomp filter refused before entry. */
static __always_inline bool classify_enter(struct task_struct *t, const struct pt_regs *regs, u8 abi, u32 slot,
					   const volatile struct syscall_desc *d, struct pending *p)
{
	u32 call;

	p->nr = slot;
	p->abi = abi;
	p->class = d->class;
	p->technique = d->technique;
	p->ns_types = 0;
	p->write = 0;
	p->origin = ORIGIN_SYSCALL;
	switch (d->class) {
	case SC_PLAIN:
		return true;
	case SC_UNSHARE:
	case SC_CLONE:
		p->ns_types = ns_types(sc_arg(regs, abi, 0));
		return p->ns_types != 0; /* unshare(CLONE_FILES), fork: no namespace */
	case SC_CLONE3:
		/* Every clone3 waits for its outcome: a success is counted at
		 * task_newtask from the kernel's copy of the flags, a failure at
		 * exit from clone_args as user memory holds it then. */
		p->args[0] = sc_arg(regs, abi, 0);
		return true;
	case SC_SETNS:
		p->ns_types = ns_types((u32)sc_arg(regs, abi, 1)); /* an int, as the kernel reads it */
		if (!p->ns_types)
			p->ns_types = setns_fd_types(t, (long)(int)sc_arg(regs, abi, 0));
		return true;
	case SC_PTRACE:
		return ptrace_changes_tracee(sc_arg(regs, abi, 0));
	case SC_OPEN:
		p->args[0] = (u64)(s64)AT_FDCWD;
		p->args[1] = sc_arg(regs, abi, 0);
		p->write = open_for_write(sc_arg(regs, abi, 1));
		return true;
	case SC_CREAT:
		p->args[0] = (u64)(s64)AT_FDCWD;
		p->args[1] = sc_arg(regs, abi, 0);
		p->write = 1; /* creat(2) is open(O_CREAT|O_WRONLY|O_TRUNC); its second argument is a mode */
		return true;
	case SC_OPENAT:
	case SC_OPEN_BY_HANDLE:
		p->args[0] = (u64)(s64)(int)sc_arg(regs, abi, 0);
		p->args[1] = sc_arg(regs, abi, 1);
		p->write = open_for_write(sc_arg(regs, abi, 2));
		return true;
	case SC_OPENAT2:
		/* open_how is read at exit, once the kernel has copied it: an
		 * opened file says itself whether it is open for writing. */
		p->args[0] = (u64)(s64)(int)sc_arg(regs, abi, 0);
		p->args[1] = sc_arg(regs, abi, 1);
		p->args[2] = sc_arg(regs, abi, 2);
		return true;
	case SC_CONNECT:
		p->args[0] = (u64)(s64)(int)sc_arg(regs, abi, 0);
		p->args[1] = sc_arg(regs, abi, 1);
		p->args[2] = (u64)(s64)(int)sc_arg(regs, abi, 2); /* addrlen is an int */
		return true;
	case SC_SENDTO:
		if (!((u32)sc_arg(regs, abi, 3) & MSG_FASTOPEN))
			return false; /* only a fast open connects */
		p->args[0] = (u64)(s64)(int)sc_arg(regs, abi, 0);
		p->args[1] = sc_arg(regs, abi, 4);
		p->args[2] = (u64)(s64)(int)sc_arg(regs, abi, 5);
		return true;
	case SC_SENDMSG:
	case SC_SENDMMSG:
		if (!((u32)sc_arg(regs, abi, d->class == SC_SENDMSG ? 2 : 3) & MSG_FASTOPEN))
			return false;
		p->args[0] = (u64)(s64)(int)sc_arg(regs, abi, 0);
		p->args[1] = sc_arg(regs, abi, 1);
		return true;
	case SC_SOCKETCALL:
		/* ia32's socketcall(call, args): connect, and sendto, sendmsg and
		 * sendmmsg with fast open, the same calls. Arguments not readable
		 * yet are read at exit, after the kernel's own copy faulted them
		 * in. */
		call = (u32)sc_arg(regs, abi, 0);
		if (call != SYS_CONNECT && call != SYS_SENDTO && call != SYS_SENDMSG && call != SYS_SENDMMSG)
			return false;
		p->args[2] = call;
		p->args[3] = sc_arg(regs, abi, 1);
		return socketcall_args(p) != SOCKETCALL_NOT_CONNECTING;
	case SC_MKNOD:
		return device_node((u32)sc_arg(regs, abi, 1), (u32)sc_arg(regs, abi, 2));
	case SC_MKNODAT:
		return device_node((u32)sc_arg(regs, abi, 2), (u32)sc_arg(regs, abi, 3));
	}
	return false;
}

static __always_inline void add(u64 *counter)
{
	__sync_fetch_and_add(counter, 1);
}

/* count_outcome adds one classified outcome to its container's counters. */
static __always_inline void count_outcome(u64 container, struct pending *p, u8 technique, bool allowed, u16 err,
					  bool entered)
{
	const volatile struct syscall_desc *d = desc_of(p->abi, p->nr);
	struct container_stats *st = stats_of(container);
	u32 a = allowed ? 1 : 0;
	u8 op, cap;

	if (!st) {
		count_lost(LOST_CONTAINER_LIMIT);
		return;
	}
	/* The masks are for the verifier, which may not see the checks. */
	if (technique > TECH_NONE && technique < TECHNIQUES)
		add(&st->escapes[BOUND(technique, 15)][a]);
	if (p->origin != ORIGIN_SYSCALL || !d)
		return;
	op = d->mount_op;
	if (op > MOUNTOP_NONE && op < MOUNT_OPS)
		add(&st->mount_ops[BOUND(op, MOUNT_OPS - 1)][a]);
	op = d->ns_op;
	if (op > NSOP_NONE && op < NS_OPS) {
#pragma unroll
		for (int i = 0; i < NS_TYPES; i++)
			if (p->ns_types & (1 << i))
				add(&st->namespace_ops[BOUND(op, NS_OPS - 1)][i][a]);
	}
	/* Without the cap_capable tracepoint: the capability the call needs,
	 * when the kernel ran it and said yes or no. */
	cap = d->capability;
	if (cap_inferred && entered && cap < CAP_SLOTS && (allowed || err == EPERM || err == EACCES)) {
		if (op > NSOP_NONE && op != NSOP_SETNS && p->ns_types == (1 << NS_USER))
			return; /* a user namespace alone needs no capability */
		add(&st->capability_checks[BOUND(cap, CAP_SLOTS - 1)][a][0]);
	}
}

/* emit sends an escape event, or folds it into the next one. */
static __always_inline void emit(struct task_struct *t, u64 container, struct pending *p, u8 technique, u8 sub,
				 bool allowed, u16 err, const void *detail, bool detail_kernel)

{
	struct fold_key fk = {
		.container = container,
		.nr = p->nr,
		.abi = p->abi,
		.technique = technique,
		.allowed = allowed,
	};
	struct event_fold *fold = 0;
	struct syscall_event *e;
	u64 now = bpf_ktime_get_boot_ns();

	/* A storm of one attempt costs counter increments, not a ring-buffer
	 * record (and a wakeup of the reader) per call. */
	if (event_interval_ns) {
		fold = bpf_map_lookup_elem(&event_sent, &fk);
		if (fold && now - fold->sent_ns < event_interval_ns) {
			u32 zero = 0;
			u64 *folded = bpf_map_lookup_elem(&events_folded, &zero);
			if (folded)
				__sync_fetch_and_add(folded, 1);
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
		bpf_map_update_elem(&event_sent, &fk, &first, BPF_NOEXIST);
	}
	e->type = EVENT_SYSCALL;
	e->tgid = BPF_CORE_READ(t, tgid);
	e->container = container;
	e->ktime_ns = now;
	e->nr = p->nr;
	e->abi = p->abi;
	e->origin = p->origin;
	e->technique = technique;
	e->sub = sub;
	e->err = err;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->detail[0] = 0;
	if (detail) {
		if (detail_kernel)
			bpf_probe_read_kernel_str(e->detail, DETAIL_LEN, detail);
		else
			bpf_probe_read_user_str(e->detail, DETAIL_LEN, detail);
	}
	bpf_ringbuf_submit(e, 0);
}

/* Details of attempts whose arguments could not be read as the kernel read them. */
const char detail_unreadable[] = "arguments unreadable";
const char detail_rewritten[] = "arguments rewritten during the call";

/* finish decides and counts a classified call once its result is known. */
static __always_inline void finish(struct task_struct *t, u64 container, struct pending *p, long ret, bool entered)
{
	bool allowed = !is_error(ret);
	u16 err = is_error(ret) ? (u16)-ret : 0;
	u8 technique = p->technique, sub = PATH_NONE;
	const void *detail = 0;
	bool detail_kernel = false;
	u64 flags = 0;
	bool write, in_root = false;
	struct file *f;

	if (p->class == SC_SOCKETCALL) {
		/* Unreadable at entry: the kernel's copy has faulted them in
		 * by now, unless another thread unmapped them meanwhile. */
		switch (socketcall_args(p)) {
		case SOCKETCALL_UNREADABLE:
			count_lost(LOST_ARGS_UNREADABLE);
			return;
		case SOCKETCALL_NOT_CONNECTING:
			return;
		}
	}
	/* openat2's open_how, as the kernel copied it; unreadable now, the
	 * worse case: for writing, from the root. */
	if (p->class == SC_OPENAT2 && !allowed) {
		struct open_how how = {};
		if (bpf_probe_read_user(&how, sizeof(how), (void *)p->args[2]) == 0) {
			p->write = open_for_write(how.flags);
			in_root = how.resolve & RESOLVE_IN_ROOT;
		} else {
			p->write = 1;
		}
	}
	/* A refusal for writing to a read-only filesystem says the kernel saw
	 * an open for writing, whatever the flags read. */
	if (ret == -EROFS)
		p->write = 1;

	switch (p->class) {
	case SC_OPEN:
	case SC_CREAT:
	case SC_OPENAT:
	case SC_OPENAT2:
	case SC_OPEN_BY_HANDLE:
		if (allowed) {
			f = task_file(t, ret);
			if (f)
				sub = classify_file(f, &write);
		} else if (p->class != SC_OPEN_BY_HANDLE) {
			sub = classify_path(t, (long)p->args[0], (const void *)p->args[1], false, p->write, in_root);
		}
		if (sub != PATH_NONE)
			technique = path_technique(sub);
		else if (p->class != SC_OPEN_BY_HANDLE)
			return; /* an ordinary open */
		if (p->class != SC_OPEN_BY_HANDLE)
			detail = (const void *)p->args[1];
		break;
	case SC_SENDTO:
	case SC_SENDMSG:
	case SC_SENDMMSG:
		/* A fast open connects as it sends: it returns what it sent. */
		allowed = ret >= 0 || ret == -EINPROGRESS;
		if (p->class != SC_SENDTO && !allowed)
			msg_name(p);
		/* fallthrough */
	case SC_CONNECT:
		if (p->class == SC_CONNECT)
			allowed = ret == 0 || ret == -EINPROGRESS;
		if (allowed) {
			f = task_file(t, (long)p->args[0]);
			if (f)
				sub = classify_connected(f);
		} else {
			sub = classify_sockaddr((const void *)p->args[1], (long)p->args[2], false, 0);
		}
		if (sub == PATH_NONE)
			return;
		technique = path_technique(sub);
		detail = p->args[1] ? (const void *)(p->args[1] + 2) : 0;
		break;
	case SC_CLONE3:
		/* Here only when no task was made (task_newtask counts the
		 * others): the flags as user memory holds them now. */
		if (bpf_probe_read_user(&flags, sizeof(flags), (void *)p->args[0])) {
			technique = TECH_NAMESPACE;
			detail = detail_unreadable;
			detail_kernel = true;
			break;
		}
		p->ns_types = ns_types(flags);
		if (p->ns_types == 0 && err == EPERM) {
			/* Refused for privilege, yet no namespace asked for: the
			 * flags the kernel read are not the ones there now. */
			technique = TECH_NAMESPACE;
			detail = detail_rewritten;
			detail_kernel = true;
			break;
		}
		if (p->ns_types == 0)
			return; /* an ordinary fork or thread that failed */
		/* fallthrough */
	case SC_UNSHARE:
	case SC_CLONE:
		/* A new user or mount namespace is a way out; the others are counted, not alerted. */
		technique = (p->ns_types & ((1 << NS_USER) | (1 << NS_MNT))) ? TECH_NAMESPACE : TECH_NONE;
		break;
	case SC_SETNS:
		technique = TECH_NAMESPACE;
		break;
	case SC_MKNOD:
	case SC_MKNODAT:
		technique = TECH_BLOCK_DEVICE;
		sub = PATH_BLOCK_DEVICE;
		break;
	}
	count_outcome(container, p, technique, allowed, err, entered);
	if (technique != TECH_NONE)
		emit(t, container, p, technique, sub, allowed, err, detail, detail_kernel);
}

/* count_denied counts a refused syscall: under its own key within the
 * container's budget of distinct (syscall, reason, errno) keys, past it in
 * the container's overflow counter, so that its total stays exact. */
static __always_inline void count_denied(u64 container, u8 abi, u32 slot, u8 reason, u16 err)
{
	struct denied_key k = {
		.container = container,
		.nr = slot,
		.abi = abi,
		.reason = reason,
		.err = err,
	};
	struct container_stats *st;
	u64 *v = bpf_map_lookup_elem(&denied, &k);
	u64 one = 1;

	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	st = stats_of(container);
	if (!st) {
		count_lost(LOST_CONTAINER_LIMIT);
		return;
	}
	/* Racing CPUs may overshoot the budget by one each: a budget, not a count. */
	if (*(volatile u32 *)&st->denied_keys >= denied_budget) {
		__sync_fetch_and_add(&st->denied_over[reason == DENY_KERNEL ? 1 : 0], 1);
		return;
	}
	if (bpf_map_update_elem(&denied, &k, &one, BPF_NOEXIST) == 0) {
		__sync_fetch_and_add(&st->denied_keys, 1);
		return;
	}
	v = bpf_map_lookup_elem(&denied, &k); /* lost a race to create it */
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	__sync_fetch_and_add(&st->denied_over[reason == DENY_KERNEL ? 1 : 0], 1); /* the map is full */
}

static __always_inline struct cpu_cache *cpu_cache_get(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&cpu_cache, &zero);
}

/* cache_verdict remembers for the CPU whether the task is one every hook
 * skips: the host and breakwater. The runtime's tasks are not skipped: once
 * they have installed the container's seccomp filter, their calls are ones
 * the filter must allow. */
static __always_inline void cache_verdict(struct cpu_cache *cc, u64 regs, u64 gen, struct task_rec *r)
{
	cc->regs = regs;
	cc->gen = gen;
	cc->skip = !r || (r->flags & TASK_SELF);
}

/* copy_regs copies a syscall's saved registers into the per-CPU buffer,
 * for kernels without bpf_rdonly_cast. */
static __always_inline const struct pt_regs *copy_regs(u64 regs)
{
	u32 zero = 0;
	void *buf = bpf_map_lookup_elem(&regs_scratch, &zero);

	if (!buf || bpf_probe_read_kernel(buf, bpf_core_type_size(struct pt_regs) & (REGS_BUF - 1), (void *)regs))
		return 0;
	return buf;
}

/* With bpf_rdonly_cast (6.2 on) the registers are read where they are, at
 * no cost; before, from a copy (one probe read). WITH_REGS runs body with
 * regs set either way: the verifier keeps the branch the kernel can run. */
#define WITH_REGS(kregs, regs, body)                                                                                   \
	do {                                                                                                           \
		if (HAVE_RDONLY_CAST()) {                                                                \
			const struct pt_regs *regs = bpf_rdonly_cast((void *)(kregs), bpf_core_type_id_kernel(struct pt_regs)); \
			body;                                                                                          \
		} else {                                                                                               \
			const struct pt_regs *regs = copy_regs(kregs);                                                 \
			if (!regs)                                                                                     \
				return 0;                                                                              \
			body;                                                                                          \
		}                                                                                                      \
	} while (0)

static __always_inline int enter_counted(struct task_struct *t, struct task_rec *r, const struct pt_regs *regs, long id,
					 u8 abi, u32 slot)
{
	const volatile struct syscall_desc *d;

	r->enter_hash = sc_args_hash(regs, abi, id);
	r->enter_slot = slot;
	r->enter_abi = abi;
	mark_seen(r, abi, slot);
	d = desc_of(abi, slot);
	if (!d || d->class == SC_NONE)
		return 0;
	if (r->pending.class != SC_NONE) {
		/* An entry whose exit never came (the task was killed in it). */
		r->pending.class = SC_NONE;
		__sync_fetch_and_add(&inflight, -1);
	}
	if (classify_enter(t, regs, abi, slot, d, &r->pending))
		__sync_fetch_and_add(&inflight, 1);
	else
		r->pending.class = SC_NONE;
	return 0;
}

static __always_inline int on_enter(u64 kregs, long id, struct cpu_cache *cc, u64 gen)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_rec *r = record_of(t);
	u8 abi;
	u32 slot;

	cache_verdict(cc, kregs, gen, r);
	if (!r || (r->flags & TASK_SELF))
		return 0;
	abi = sc_abi(t, id);
	slot = sc_slot(id);
	if (r->flags & TASK_RUNTIME) {
		/* The runtime's last calls after it installed the container's
		 * seccomp filter are calls the filter must allow. */
		if (t->seccomp.mode == SECCOMP_MODE_FILTER)
			mark_seen(r, abi, slot);
		return 0;
	}
	r->flags |= TASK_ARMED;
	WITH_REGS(kregs, regs, return enter_counted(t, r, regs, id, abi, slot));
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct cpu_cache *cc = cpu_cache_get();
	u64 regs = ctx->args[0];
	u64 gen = cache_gen;

	if (!cc)
		return 0;
	if (cc->regs == regs && cc->gen == gen && cc->skip)
		return 0; /* the fast path of nearly every host syscall */
	return on_enter(regs, (long)ctx->args[1], cc, gen);
}

static __always_inline int exit_counted(struct task_struct *t, struct task_rec *r, const struct pt_regs *regs, long ret,
					struct pending *p)
{
	const volatile struct syscall_desc *d;
	struct pending local = {};
	bool entered, refused = false;
	long nr = sc_nr(regs);
	u8 abi = sc_abi(t, nr);
	u32 slot = sc_slot(nr);

	entered = r->enter_hash != 0 && r->enter_hash == sc_args_hash(regs, abi, nr);
	r->enter_hash = 0;
	if (p && (p->nr != slot || p->abi != abi))
		p = 0; /* left over from a call whose exit never came */
	if (p)
		entered = true;
	if (is_error(ret) && !entered && !sc_rewrites_regs(abi, slot)) {
		/* No entry for this exit: the seccomp filter refused the call
		 * before sys_enter. A task breakwater has not seen enter yet may
		 * be returning from a call it began before the programs
		 * attached: for it only the errnos filters use count. */
		refused = (r->flags & TASK_ARMED) || ret == -EPERM || ret == -EACCES || ret == -ENOSYS;
	}
	if (!p && refused) {
		d = desc_of(abi, slot);
		if (d && d->class != SC_NONE && classify_enter(t, regs, abi, slot, d, &local))
			p = &local;
	}
	if (p)
		finish(t, r->container, p, ret, entered);
	if (refused)
		count_denied(r->container, abi, slot, DENY_SECCOMP, (u16)-ret);
	else if (entered && (ret == -EPERM || ret == -EACCES))
		count_denied(r->container, abi, slot, DENY_KERNEL, (u16)-ret);
	return 0;
}

static __always_inline int on_exit(u64 kregs, long ret, struct cpu_cache *cc, u64 gen)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_rec *r = record_of(t);
	struct pending pending = {};
	struct pending *p = 0;

	cache_verdict(cc, kregs, gen, r);
	if (!r)
		return 0;
	if (r->pending.class != SC_NONE) {
		pending = r->pending;
		r->pending.class = SC_NONE;
		__sync_fetch_and_add(&inflight, -1);
		p = &pending;
	}
	if (!counted(r))
		return 0;
	WITH_REGS(kregs, regs, return exit_counted(t, r, regs, ret, p));
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	long ret = (long)ctx->args[1];
	struct cpu_cache *cc;
	u64 regs = ctx->args[0];
	u64 gen;

	if (!is_error(ret) && *(volatile s64 *)&inflight <= 0)
		return 0; /* the fast path of nearly every syscall */
	cc = cpu_cache_get();
	gen = cache_gen;
	if (!cc)
		return 0;
	if (cc->regs == regs && cc->gen == gen && cc->skip)
		return 0;
	return on_exit(regs, ret, cc, gen);
}

#define REQ_F_CQE_SKIP (1U << 6) /* IOSQE_CQE_SKIP_SUCCESS, as io_kiocb's flags keep it */

/* uring_outcome counts a tracked io_uring request once its result is known. */
static __always_inline void uring_outcome(struct task_struct *t, struct uring_req *u, long res, struct file *f, bool by_fd)
{
	bool allowed, write;
	u8 sub = (u8)u->p.args[3];

	if (u->p.class == SC_CONNECT) {
		allowed = res == 0 || res == -EINPROGRESS;
		if (allowed && f && classify_connected(f) == PATH_RUNTIME_SOCKET)
			sub = PATH_RUNTIME_SOCKET;
	} else {
		allowed = !is_error(res);
		if (allowed && by_fd && !u->p.args[2]) {
			f = task_file(t, res);
			if (f) {
				u8 fsub = classify_file(f, &write);
				if (fsub != PATH_NONE)
					sub = fsub;
			}
		}
	}
	if (sub == PATH_NONE)
		return;
	count_outcome(u->container, &u->p, path_technique(sub), allowed, allowed ? 0 : (u16)-res, true);
	emit(t, u->container, &u->p, path_technique(sub), sub, allowed, allowed ? 0 : (u16)-res, u->detail, true);
}

/* uring_untrack forgets a tracked request: its container's budget, and,
 * when its owner is the task at hand, the owner's count of requests that
 * may post no completion (elsewhere it stays high: the owner's exit then
 * looks for nothing). */
static __always_inline void uring_untrack(struct uring_req *u, u64 key)
{
	struct container_stats *st = bpf_map_lookup_elem(&containers, &u->container);
	struct task_struct *t = bpf_get_current_task_btf();

	if (bpf_map_delete_elem(&uring_reqs, &key))
		return; /* another CPU did */
	if (st)
		__sync_fetch_and_add(&st->uring_inflight, -1);
	if (u->skip && u->owner == (u64)t) {
		struct task_rec *o = bpf_task_storage_get(&tasks, t, 0, 0);
		if (o && o->uring_skips)
			__sync_fetch_and_add(&o->uring_skips, -1);
	}
}

/* A request that was to post no completion on success and is still
 * tracked when its request is reused, or when its owner exits, succeeded
 * (a failure clears the skip and posts its completion). */
static __always_inline void uring_skipped_success(struct task_struct *t, struct uring_req *found, u64 key)
{
	u32 zero = 0;
	struct uring_req *u = bpf_map_lookup_elem(&uring_scratch, &zero);

	if (!u)
		return;
	__builtin_memcpy(u, found, sizeof(*u));
	uring_untrack(u, key);
	uring_outcome(t, u, 0, 0, false); /* the file is not looked up: its fd is not known */
}

/* count_new_namespaces counts the namespaces a new task was made with,
 * from the kernel's own copy of the flags (clone3's struct clone_args is
 * copied once, by the kernel, before this): what user memory says then or
 * later does not matter. The call that made it is the creator's call in
 * flight. */
static __always_inline void count_new_namespaces(struct task_struct *creator, struct task_rec *r, u64 clone_flags)
{
	struct pending p = {};
	u8 technique;

	p.ns_types = ns_types(clone_flags);
	if (r->pending.class == SC_CLONE || r->pending.class == SC_CLONE3) {
		/* Counted here, once: the exit has nothing left to decide. */
		r->pending.class = SC_NONE;
		__sync_fetch_and_add(&inflight, -1);
	}
	if (!p.ns_types || r->enter_hash == 0)
		return;
	p.nr = r->enter_slot;
	p.abi = r->enter_abi;
	p.class = SC_CLONE3;
	p.origin = ORIGIN_SYSCALL;
	technique = (p.ns_types & ((1 << NS_USER) | (1 << NS_MNT))) ? TECH_NAMESPACE : TECH_NONE;
	count_outcome(r->container, &p, technique, true, 0, true);
	if (technique != TECH_NONE)
		emit(creator, r->container, &p, technique, PATH_NONE, true, 0, 0, false);
}

/* A new task, made by fork, clone, clone3 or by the kernel for the task
 * (io_uring's SQPOLL and io-wq workers), inherits its creator's record
 * (made now for a creator in a container not seen yet). A child of a host
 * task born into a container's cgroup (clone3 with CLONE_INTO_CGROUP) came
 * from outside: the runtime's, until it executes something. This fires in
 * copy_process once the task has its cgroup, before it first runs. */
SEC("tp_btf/task_newtask")
int BPF_PROG(task_newtask, struct task_struct *child, unsigned long clone_flags)
{
	struct task_struct *parent = bpf_get_current_task_btf();
	struct task_rec *pr = record_of(parent);
	struct task_rec *cr;
	struct cgroup_rec *c;
	u64 cg = task_cgroup_id(child);

	bump_gen(); /* the child may reuse the registers' address of a task gone */
	c = bpf_map_lookup_elem(&tracked_cgroups, &cg);
	if (pr && !(pr->flags & TASK_SELF) && (pr->container || !c)) {
		if (counted(pr))
			count_new_namespaces(parent, pr, clone_flags);
		cr = bpf_task_storage_get(&tasks, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!cr) {
			count_lost(LOST_TASK_STORAGE);
			return 0;
		}
		cr->container = 0;
		cr->flags = (pr->flags & (TASK_RUNTIME | TASK_CONTAINER)) | TASK_ARMED;
		set_container(cr, pr->container);
		cr->setup_ns = pr->setup_ns;
		cr->enter_hash = 0;
		cr->pending.class = SC_NONE;
		__builtin_memcpy(cr->seen, pr->seen, sizeof(cr->seen));
		return 0;
	}
	/* breakwater's threads are breakwater; a process it starts is not. */
	if ((pr ? (pr->flags & TASK_SELF) != 0 : is_self(parent)) && child->tgid == parent->tgid) {
		new_record(child, 0, TASK_SELF);
		return 0;
	}
	if (!c)
		return 0;
	cr = new_record(child, c->container, TASK_RUNTIME | TASK_ARMED);
	if (cr)
		cr->setup_ns = runtime_ns(child, parent);
	return 0;
}

/* skipped_of_owner counts the requests of an exiting task that were to
 * post no completion on success and are still tracked: they succeeded. */
static long skipped_of_owner(void *map, u64 *key, struct uring_req *u, u64 *owner)
{
	if (u->owner == *owner && u->skip)
		uring_skipped_success(bpf_get_current_task_btf(), u, *key);
	return 0;
}

/* A task's end: its container has one live task fewer, and its io_uring
 * requests that post no completion on success are done. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_rec *r;

	if (!t->bpf_storage)
		return 0;
	r = bpf_task_storage_get(&tasks, t, 0, 0);
	if (r && r->uring_skips) {
		u64 owner = (u64)t;
		bpf_for_each_map_elem(&uring_reqs, skipped_of_owner, &owner, 0);
	}
	if (r && (r->flags & TASK_LIVE))
		set_container(r, 0);
	return 0;
}

/* Executing something ends the runtime's set-up: from here on the task is
 * the container's. Only the runtime executing again in the mount namespace
 * it entered set-up in does not: nothing there is the container's to run.
 * The credentials it executes with say which dangerous capabilities the
 * container holds. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_rec *r = record_of(t);
	struct container_stats *st;
	const struct cred *cred;
	u64 caps = 0;

	if (!r || (r->flags & TASK_SELF))
		return 0;
	if (r->flags & TASK_RUNTIME) {
		if (r->setup_ns && r->setup_ns == mount_ns(t))
			return 0;
		r->flags &= ~TASK_RUNTIME;
		r->setup_ns = 0;
		bump_gen();
	}
	r->flags |= TASK_ARMED;
	if (r->container == 0)
		return 0;
	r->flags |= TASK_CONTAINER;
	cred = BPF_CORE_READ(t, cred);
	/* Only capabilities that reach the host: inside a user namespace they are the namespace's. */
	if (BPF_CORE_READ(cred, user_ns, level) != 0)
		return 0;
	bpf_core_read(&caps, sizeof(caps), &cred->cap_effective);
	st = stats_of(r->container);
	if (st)
		__sync_fetch_and_or(&st->exec_caps, caps);
	return 0;
}

/* A task moved into a cgroup. One that is the container's for good stays
 * so. By a container's own process: it is that container's, wherever it
 * went. By anything else (the runtime entering a container, docker exec):
 * the container's, exempt as the runtime's until it executes something; or
 * the host's, when moved out. */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cgroup_attach_task, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	struct task_struct *writer = bpf_get_current_task_btf();
	struct task_rec *wr, *tr;
	struct cgroup_rec *c;
	u64 dst_id, dst_container = 0;

	if (BPF_CORE_READ(dst, root, hierarchy_id) != 0)
		return 0; /* only the unified hierarchy says who a task is */
	dst_id = BPF_CORE_READ(dst, kn, id);
	c = bpf_map_lookup_elem(&tracked_cgroups, &dst_id);
	if (c)
		dst_container = c->container;
	wr = record_of(writer);
	tr = bpf_task_storage_get(&tasks, task, 0, 0);
	if (tr && (tr->flags & TASK_CONTAINER))
		return 0; /* the container's for good, wherever it goes and whoever moves it */
	bump_gen();
	if (counted(wr) && wr->container != 0) {
		if (!tr) {
			new_record(task, wr->container, TASK_ARMED | TASK_CONTAINER);
		} else if (tr->container == 0 && !(tr->flags & TASK_SELF)) {
			set_container(tr, wr->container);
			tr->flags |= TASK_CONTAINER;
		}
		return 0;
	}
	if (dst_container) {
		/* The host moved a container's task inside its container: still
		 * the container's. Unless the task was only adopted by its cgroup
		 * while the move was under way. */
		if (tr && tr->container == dst_container && counted(tr) && !(tr->flags & TASK_ADOPTED))
			return 0;
		if (!tr)
			tr = new_record(task, dst_container, 0);
		if (tr && !(tr->flags & TASK_SELF)) {
			set_container(tr, dst_container);
			tr->flags = TASK_RUNTIME | TASK_ARMED | (tr->flags & TASK_LIVE);
			tr->setup_ns = runtime_ns(task, writer);
		}
		return 0;
	}
	if (tr && !(tr->flags & TASK_SELF))
		set_container(tr, 0);
	return 0;
}

/* container_path reports whether a cgroup path names a container: its last
 * component is, or ends in, a 64-hex id, as /docker/<id>,
 * docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope and
 * kubepods/.../pod<uid>/<id> do. Branch-free, so the verifier sees one path. */
#define PATH_AT(i) e->path[(i) & (CGROUP_PATH_LEN - 1)]

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

/* track_new decides at cgroup_mkdir, before user space sees the record,
 * which container a new cgroup belongs to: its parent's, or that of the
 * container process that made it, wherever; else, when its path names a
 * container, its own. */
static __always_inline u64 track_new(struct cgroup *cgrp, struct cgroup_event *e, long len)
{
	u64 id = e->cgroup_id;
	u64 parent = BPF_CORE_READ(cgrp, self.parent, cgroup, kn, id);
	struct cgroup_rec *pc = bpf_map_lookup_elem(&tracked_cgroups, &parent);
	struct cgroup_rec rec = {};
	struct container_stats *st, *z;
	struct task_rec *wr;
	u32 zero = 0;

	if (pc) {
		rec.container = pc->container;
	} else {
		wr = record_of(bpf_get_current_task_btf());
		if (counted(wr) && wr->container != 0)
			rec.container = wr->container;
	}
	if (rec.container) {
		st = stats_of(rec.container);
		if (!st || *(volatile u32 *)&st->subcgroups >= subcgroup_budget) {
			count_lost(LOST_SUBCGROUP_LIMIT);
			return 0;
		}
		if (bpf_map_update_elem(&tracked_cgroups, &id, &rec, BPF_NOEXIST)) {
			count_lost(LOST_CONTAINER_LIMIT);
			return 0;
		}
		__sync_fetch_and_add(&st->subcgroups, 1);
		return rec.container;
	}
	if (len <= 0 || !container_path(e, len))
		return 0;
	z = bpf_map_lookup_elem(&zero_stats, &zero);
	if (!z)
		return 0;
	if (bpf_map_update_elem(&containers, &id, z, BPF_NOEXIST)) {
		count_lost(LOST_CONTAINER_LIMIT);
		return 0;
	}
	rec.container = id;
	rec.root = 1;
	if (bpf_map_update_elem(&tracked_cgroups, &id, &rec, BPF_NOEXIST)) {
		bpf_map_delete_elem(&containers, &id);
		count_lost(LOST_CONTAINER_LIMIT);
		return 0;
	}
	return id;
}

static __always_inline int cgroup_event(struct cgroup *cgrp, const char *path, u32 type)
{
	struct cgroup_event *e;
	struct cgroup_rec *c;
	u32 zero = 0;
	long len;

	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0; /* only the unified hierarchy: its ids are what tasks report */
	e = bpf_map_lookup_elem(&cgroup_scratch, &zero);
	if (!e)
		return 0;
	e->type = type;
	e->level = BPF_CORE_READ(cgrp, level);
	e->cgroup_id = BPF_CORE_READ(cgrp, kn, id);
	e->container = 0;
	len = bpf_probe_read_kernel_str(e->path, sizeof(e->path), path) - 1;
	if (type == EVENT_CGROUP_MKDIR) {
		e->container = track_new(cgrp, e, len);
	} else {
		c = bpf_map_lookup_elem(&tracked_cgroups, &e->cgroup_id);
		if (c) {
			e->container = c->container;
			if (!c->root) {
				struct container_stats *st = bpf_map_lookup_elem(&containers, &c->container);
				if (st)
					__sync_fetch_and_add(&st->subcgroups, -1);
			}
			bpf_map_delete_elem(&tracked_cgroups, &e->cgroup_id);
		}
	}
	if (bpf_ringbuf_output(&cgroup_events, e, sizeof(*e), 0))
		count_lost(LOST_CGROUP_RINGBUF_FULL);
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	return cgroup_event(cgrp, path, EVENT_CGROUP_MKDIR);
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	return cgroup_event(cgrp, path, EVENT_CGROUP_RMDIR);
}

/* noaudit_caller reports whether the capability check being traced was
 * called from a function that checks without auditing. */
static __always_inline bool noaudit_caller(void *ctx)
{
	u32 zero = 0;
	struct stack_buf *sb = bpf_map_lookup_elem(&stack_scratch, &zero);
	long n;

	if (!sb)
		return false;
	n = bpf_get_stack(ctx, sb->ips, sizeof(sb->ips), 0);
	if (n <= 0)
		return false;
	n = (u64)n / 8;
	for (int i = 0; i < STACK_DEPTH; i++) {
		if (i >= n)
			break;
		u64 ip = sb->ips[i];
		for (int j = 0; j < NOAUDIT_RANGES; j++)
			if (ip >= noaudit_ranges[j].start && ip < noaudit_ranges[j].end)
				return true;
	}
	return false;
}

/* The kernel's own capability checks of the task's own credentials.
 * Checks the kernel makes without auditing them (CAP_SYS_ADMIN asked of
 * every memory charge to grant root a reserve, CAP_IPC_LOCK of io_uring's
 * accounting, ...) refuse no attempt and are not counted; see
 * docs/security-metrics.md. */
SEC("tp_btf/cap_capable")
int BPF_PROG(cap_capable, const struct cred *cred, struct user_namespace *targ_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	const volatile struct syscall_desc *d;
	struct container_stats *st;
	struct task_rec *r;
	u32 scope;

	if (!t->bpf_storage && !count_host)
		return 0; /* no record: a host task */
	r = record_of(t);
	if (!counted(r) || cap < 0 || cap >= CAP_SLOTS)
		return 0;
	/* Checks of borrowed credentials are the kernel acting for someone
	 * else (overlayfs checks the lower layers with its mounter's), not the
	 * task asking. */
	if (cred != t->real_cred)
		return 0;
	scope = BPF_CORE_READ(targ_ns, level) == 0 ? 0 : 1;
	if (cap == CAP_SYS_ADMIN && scope == 0) {
		/* The memory-charge check, by far the most frequent, known
		 * without a stack walk by the calls that make it: the memory
		 * calls, and a fork or clone that creates no namespace (one that
		 * does also checks CAP_SYS_ADMIN for the namespace). */
		if (r->enter_hash == 0)
			return 0; /* no call in flight: a stack growing on a fault */
		d = desc_of(r->enter_abi, r->enter_slot);
		if (d && (d->pad[0] & DESC_VM_ACCOUNTING) &&
		    !((d->class == SC_CLONE || d->class == SC_CLONE3) && r->pending.class != SC_NONE))
			return 0;
	}
	if (noaudit_ranges[0].end && noaudit_caller(ctx))
		return 0;
	st = stats_of(r->container);
	if (st)
		add(&st->capability_checks[BOUND(cap, CAP_SLOTS - 1)][ret == 0 ? 1 : 0][BOUND(scope, 1)]);
	return 0;
}

/* io_uring: an open or connect submitted as an operation is classified like
 * its syscall, from the kernel's own copy of the path or address. */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(io_uring_submit_req, struct io_kiocb *req)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct container_stats *st;
	struct task_rec *r;
	struct uring_req *u, *prev;
	u8 op = BPF_CORE_READ(req, opcode);
	u64 key = (u64)req;
	u32 zero = 0;

	prev = bpf_map_lookup_elem(&uring_reqs, &key);
	if (prev && prev->skip)
		uring_skipped_success(t, prev, key); /* the request is reused: the last one is done */
	else if (prev)
		uring_untrack(prev, key);
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2 && op != IORING_OP_CONNECT)
		return 0;
	r = record_of(t);
	if (!counted(r))
		return 0;
	st = stats_of(r->container);
	if (!st) {
		count_lost(LOST_CONTAINER_LIMIT);
		return 0;
	}
	u = bpf_map_lookup_elem(&uring_scratch, &zero);
	if (!u)
		return 0;
	__builtin_memset(&u->p, 0, sizeof(u->p));
	u->container = r->container;
	u->owner = (u64)t;
	u->skip = (BPF_CORE_READ(req, flags) & REQ_F_CQE_SKIP) != 0;
	u->p.abi = ABI_NATIVE;
	u->p.origin = ORIGIN_IO_URING;
	u->detail[0] = 0;
	if (op == IORING_OP_CONNECT) {
		struct io_connect *c = (struct io_connect *)req;
		void *async = BPF_CORE_READ(req, async_data);
		u->p.class = SC_CONNECT;
		u->p.nr = uring_nr_connect;
		u->p.args[1] = async ? (u64)async + bpf_core_field_offset(struct io_async_msghdr, addr) : 0;
		u->p.args[2] = BPF_CORE_READ(c, addr_len);
		u->p.args[3] = classify_sockaddr((const void *)u->p.args[1], (long)u->p.args[2], true, u->detail);
	} else {
		struct io_open *o = (struct io_open *)req;
		const char *name = BPF_CORE_READ(o, filename, name);
		u->p.class = op == IORING_OP_OPENAT ? SC_OPENAT : SC_OPENAT2;
		u->p.nr = op == IORING_OP_OPENAT ? uring_nr_openat : uring_nr_openat2;
		u->p.args[0] = (u64)(s64)BPF_CORE_READ(o, dfd);
		/* A fixed file slot leaves no descriptor to look at: the path decides. */
		u->p.args[2] = BPF_CORE_READ(o, file_slot) != 0;
		u->p.write = open_for_write(BPF_CORE_READ(o, how.flags));
		u->p.args[3] = classify_path(t, (long)u->p.args[0], name, true, u->p.write,
					     op == IORING_OP_OPENAT2 && (BPF_CORE_READ(o, how.resolve) & RESOLVE_IN_ROOT));
		bpf_probe_read_kernel_str(u->detail, DETAIL_LEN, name);
	}
	if (*(volatile u32 *)&st->uring_inflight >= uring_budget) {
		count_lost(LOST_URING_BUDGET);
		return 0;
	}
	if (bpf_map_update_elem(&uring_reqs, &key, u, BPF_NOEXIST)) {
		count_lost(LOST_URING_MAP_FULL);
		return 0;
	}
	__sync_fetch_and_add(&st->uring_inflight, 1);
	if (u->skip)
		__sync_fetch_and_add(&r->uring_skips, 1);
	return 0;
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(io_uring_complete, void *ring, void *req, struct io_uring_cqe *cqe)
{
	struct task_struct *t = bpf_get_current_task_btf();
	u64 key = (u64)req;
	struct uring_req *found = bpf_map_lookup_elem(&uring_reqs, &key);
	struct uring_req *u;
	u32 zero = 0;

	if (!found)
		return 0;
	u = bpf_map_lookup_elem(&uring_scratch, &zero);
	if (!u)
		return 0;
	__builtin_memcpy(u, found, sizeof(*u));
	uring_untrack(u, key);
	uring_outcome(t, u, BPF_CORE_READ(cqe, res), BPF_CORE_READ((struct io_kiocb *)req, file), true);
	return 0;
}
