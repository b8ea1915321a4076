/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only) */
/*
 * Classification: what object a syscall reached, decided from the kernel's
 * own objects wherever they exist (the opened file's inode, filesystem and
 * dentries; the connected socket's peer), and from the path the kernel would
 * have walked where the call failed and left no object behind.
 */
#ifndef BREAKWATER_CLASSIFY_H
#define BREAKWATER_CLASSIFY_H

#include "types.h"
#include "arch.h"

#define EPERM 1
#define ENOENT 2
#define ENOTDIR 20
#define EACCES 13
#define EROFS 30
#define ENOSYS 38
#define EINPROGRESS 115
#define MAX_ERRNO 4095

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SYS_CONNECT 3 /* socketcall(2) call numbers */
#define SYS_SENDTO 11
#define SYS_SENDMSG 16
#define SYS_SENDMMSG 20
#define MSG_FASTOPEN 0x20000000

#define S_IFMT 00170000
#define S_IFBLK 0060000
#define S_IFCHR 0020000
#define O_ACCMODE 00000003
#define O_CREAT 00000100
#define O_TRUNC 00001000
#define AT_FDCWD -100
#define RESOLVE_IN_ROOT 0x10
#define FMODE_WRITE 0x2
#define SECCOMP_MODE_FILTER 2

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
#define PTRACE_SETREGS 13
#define PTRACE_SETFPREGS 15
#define PTRACE_ATTACH 16
#define PTRACE_KILL 8
#define PTRACE_SETFPXREGS 19      /* i386 */
#define PTRACE_OLDSETOPTIONS 21   /* x86, AArch32 */
#define COMPAT_PTRACE_SET_SYSCALL 23 /* AArch32 */
#define PTRACE_SET_THREAD_AREA 26 /* x86 */
#define COMPAT_PTRACE_SETVFPREGS 28 /* AArch32 */
#define PTRACE_ARCH_PRCTL 30      /* x86_64: the tracee's fs and gs bases; AArch32: SETHBPREGS */
#define PTRACE_POKEMTETAGS 34     /* arm64 */
#define PTRACE_SETOPTIONS 0x4200 /* PTRACE_O_SUSPEND_SECCOMP among them */
#define PTRACE_SETSIGINFO 0x4203
#define PTRACE_SETREGSET 0x4205
#define PTRACE_SEIZE 0x4206
#define PTRACE_SETSIGMASK 0x420b
#define PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG 0x4210
#define PTRACE_SET_SYSCALL_INFO 0x4212

#define PROC_SUPER_MAGIC 0x9fa0
#define CGROUP_SUPER_MAGIC 0x27e0eb /* cgroup v1 */
#define SYSFS_MAGIC 0x62656572
#define BINFMTFS_MAGIC 0x42494e4d

#define MEM_MAJOR 1 /* /dev/mem 1:1, /dev/kmem 1:2, /dev/port 1:4 */
#define KDEV(ma, mi) (((u32)(ma) << 20) | (u32)(mi))

#define PATH_BUF 4096 /* PATH_MAX: the kernel refuses longer paths before walking them */
#define COMPS 8       /* trailing path components kept; patterns need at most 5 and "nothing above" */
#define COMP_LEN 32   /* bytes kept of a component (a power of two: indexes are masked); longer names match no pattern */

/* BOUND masks an index the code has checked, behind a barrier so that the
 * compiler keeps the mask the verifier needs. */
#define BOUND(x, mask)                                                                                                 \
	({                                                                                                             \
		u64 __v = (x);                                                                                         \
		barrier_var(__v);                                                                                      \
		__v & (mask);                                                                                          \
	})

static __always_inline bool is_error(long ret)
{
	return ret < 0 && ret >= -MAX_ERRNO;
}

/* ns_types maps CLONE_NEW* flags to a bit per enum ns_type. */
static __always_inline u8 ns_types(u64 flags)
{
	u8 bits = 0;
	if (flags & CLONE_NEWNS)
		bits |= 1 << NS_MNT;
	if (flags & CLONE_NEWPID)
		bits |= 1 << NS_PID;
	if (flags & CLONE_NEWNET)
		bits |= 1 << NS_NET;
	if (flags & CLONE_NEWUSER)
		bits |= 1 << NS_USER;
	if (flags & CLONE_NEWUTS)
		bits |= 1 << NS_UTS;
	if (flags & CLONE_NEWIPC)
		bits |= 1 << NS_IPC;
	if (flags & CLONE_NEWCGROUP)
		bits |= 1 << NS_CGROUP;
	if (flags & CLONE_NEWTIME)
		bits |= 1 << NS_TIME;
	return bits;
}

/* task_file returns the file behind a descriptor of a task, or NULL. */
static __always_inline struct file *task_file(struct task_struct *t, long fd)
{
	struct fdtable *fdt = t->files->fdt;
	struct file *f = 0;

	if (!fdt || fd < 0 || (unsigned long)fd >= fdt->max_fds)
		return 0;
	if (bpf_core_read(&f, sizeof(f), &fdt->fd[fd]))
		return 0;
	return f;
}

/* What an opened file is, read directly where the kernel lets a program
 * type an address (bpf_rdonly_cast), else by probe reads. */
struct file_facts {
	unsigned long magic;
	u32 rdev;
	u16 mode;
	bool write;
};

static __always_inline void file_facts(struct file *f, struct file_facts *ff)
{
	struct inode *inode;

	if (HAVE_RDONLY_CAST()) {
		struct file *c = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
		inode = c->f_inode;
		ff->write = c->f_mode & FMODE_WRITE;
		ff->mode = inode->i_mode;
		ff->rdev = inode->i_rdev;
		ff->magic = inode->i_sb->s_magic;
		return;
	}
	inode = BPF_CORE_READ(f, f_inode);
	ff->write = BPF_CORE_READ(f, f_mode) & FMODE_WRITE;
	ff->mode = BPF_CORE_READ(inode, i_mode);
	ff->rdev = BPF_CORE_READ(inode, i_rdev);
	ff->magic = BPF_CORE_READ(inode, i_sb, s_magic);
}

/* setns_fd_types returns the namespace type behind a setns fd, read from
 * the nsfs inode. */
static __always_inline u8 setns_fd_types(struct task_struct *t, long fd)
{
	struct file *f = task_file(t, fd);
	void *ns;
	u32 type = 0;

	if (!f)
		return 0;
	ns = BPF_CORE_READ(f, f_inode, i_private);
	if (!ns)
		return 0;
	if (bpf_core_field_exists(struct ns_common, ns_type))
		type = BPF_CORE_READ((struct ns_common *)ns, ns_type);
	else
		type = BPF_CORE_READ((struct ns_common___pre618 *)ns, ops, type);
	return ns_types(type);
}

/* Path components, collected from the end of a path. */
struct comps {
	char name[COMPS][COMP_LEN]; /* NUL-terminated, cut at COMP_LEN-1 */
	u16 len[COMPS];             /* true lengths */
	u32 n;
	u8 top;     /* the walk reached its top: the filesystem's root, or the process's root */
	u8 unknown; /* the walk ran out of budget: what is above is unknown, match suffixes */
	u8 bad;     /* the path leaves the filesystem the walk is confined to */
	u8 pad;
};

/* The state of the loops below. It lives in the scratch map value, not on
 * the stack, so that the verifier sees every iteration alike (map contents
 * are unknown to it) and does not walk all 4096 of them. */
struct loop_state {
	s64 pos;  /* fold: the character looked at, scanning backwards; -1 past the start */
	s64 end;  /* fold: end (exclusive) of the component being scanned */
	u64 skip; /* ".." not yet matched with a component */
	u64 d;    /* walk: the dentry looked at */
	u64 m;    /* walk: the mount it is seen through (struct mount *) */
	u64 root_d, root_m; /* walk: the process's root */
	u64 mode; /* walk: enum walk_mode */
	u64 start; /* basename, resolve: where the component being scanned starts */
	u64 n;     /* resolve: components on the stack */
	u64 ovf;   /* resolve: components deeper than the stack holds */
	u64 rooted; /* resolve: at a root, where ".." stays */
	u64 anchor; /* resolve: enum anchor */
	s64 anchor_fd; /* resolve: the descriptor of ANCHOR_FD */
	u64 proc_dir; /* resolve: the starting directory is procfs's root */
};

/* Where a path resolves from once a magic link of procfs
 * (/proc/self/root, /proc/self/cwd, /proc/self/fd/N, /dev/fd/N) has
 * jumped: the rest of the path is relative to it, as the kernel walks it. */
enum anchor {
	ANCHOR_START = 0, /* the root, working directory or dirfd the call named */
	ANCHOR_ROOT,      /* the process's root */
	ANCHOR_CWD,       /* its working directory */
	ANCHOR_FD,        /* one of its descriptors */
	ANCHOR_UNKNOWN,   /* another task's working directory or descriptor */
};

/* Per-CPU scratch of path classification: too large for the stack. */
struct path_scratch {
	char buf[PATH_BUF];
	struct comps c;
	struct loop_state l;
	char stk[COMPS][COMP_LEN]; /* resolve: components from the start, the deepest last */
	u16 stk_len[COMPS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct path_scratch);
} path_scratch SEC(".maps");

static __always_inline struct path_scratch *scratch(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&path_scratch, &zero);
}

/* comp_is reports whether component i is exactly the literal of n bytes
 * (with its NUL). */
static __always_inline bool comp_eq(struct comps *c, u32 i, const char *lit, u32 n)
{
	if (i >= c->n || i >= COMPS || c->len[BOUND(i, COMPS - 1)] != n - 1)
		return false;
#pragma unroll
	for (u32 k = 0; k < COMP_LEN; k++) {
		if (k >= n - 1)
			return true;
		if (c->name[BOUND(i, COMPS - 1)][k] != lit[k])
			return false;
	}
	return false;
}

#define IS(i, lit) comp_eq(c, i, lit, sizeof(lit))

/* depth_is reports whether the walk has exactly n components below its
 * top, or, when the top is unknown, at least n. */
static __always_inline bool depth_is(struct comps *c, u32 n)
{
	if (c->unknown)
		return c->n >= n;
	return c->top && c->n == n;
}

/* below reports whether the walk reached its top and the components
 * nearest it are, from the top down, a then b (and c when given): the
 * path is somewhere under /a/b(/c), at any depth. */
static __always_inline bool below(struct comps *c, const char *a, u32 na, const char *b, u32 nb, const char *cc,
				  u32 nc)
{
	u32 n = c->n;

	if (!c->top || c->unknown || n < (cc ? 4 : 3))
		return false;
	if (!comp_eq(c, n - 1, a, na) || !comp_eq(c, n - 2, b, nb))
		return false;
	return !cc || comp_eq(c, n - 3, cc, nc);
}
#define BELOW2(a, b) below(c, a, sizeof(a), b, sizeof(b), 0, 0)
#define BELOW3(a, b, cc) below(c, a, sizeof(a), b, sizeof(b), cc, sizeof(cc))

/* proc_mem reports whether components from the top of procfs name a
 * task's memory file: <pid>/mem or <pid>/task/<tid>/mem, the pid anything
 * but the caller's own self links. */
static __always_inline bool proc_mem(struct comps *c, u32 above)
{
	if (!IS(0, "mem") || !c->top || c->unknown)
		return false;
	if (c->n == above + 2)
		return !IS(1, "self") && !IS(1, "thread-self");
	return c->n == above + 4 && IS(2, "task") && !IS(3, "self");
}

/* match_in_fs names a location inside a filesystem of the given magic
 * (components from the end up to the filesystem's root). */
static __always_inline u8 match_in_fs(struct comps *c, unsigned long magic, bool write)
{
	if (c->bad || c->n == 0)
		return PATH_NONE;
	switch (magic) {
	case PROC_SUPER_MAGIC:
		if (!write)
			return PATH_NONE;
		if (BELOW2("sys", "kernel"))
			return PATH_PROC_SYS;
		if (proc_mem(c, 0))
			return PATH_PROC_MEM;
		if (depth_is(c, 1) && IS(0, "sysrq-trigger"))
			return PATH_PROC_SYS;
		if (depth_is(c, 4) && IS(0, "register") && IS(1, "binfmt_misc") && IS(2, "fs") && IS(3, "sys"))
			return PATH_PROC_SYS;
		return PATH_NONE;
	case BINFMTFS_MAGIC:
		if (write && depth_is(c, 1) && IS(0, "register"))
			return PATH_PROC_SYS;
		return PATH_NONE;
	case CGROUP_SUPER_MAGIC:
		if (write && (IS(0, "release_agent") || IS(0, "notify_on_release")))
			return PATH_RELEASE_AGENT;
		return PATH_NONE;
	case SYSFS_MAGIC:
		if (write && depth_is(c, 2) && IS(0, "uevent_helper") && IS(1, "kernel"))
			return PATH_UEVENT_HELPER;
		return PATH_NONE;
	}
	return PATH_NONE;
}

/* disk_name reports whether the last component is a disk's device name:
 * the prefix, then up to letters lowercase letters (sda, xvdab; none for
 * numbered ones), then digits and partition or namespace separators
 * (sda1, nvme0n1p2, mmcblk0p1, loop7). sdcard0 and hdmi_cec are no disks. */
static __always_inline bool disk_name(struct comps *c, const char *prefix, u32 plen, u32 letters)
{
	u32 len = c->len[0], run = 0;
	bool digits = false;

	if (c->n == 0 || len <= plen || len >= COMP_LEN)
		return false;
#pragma unroll
	for (u32 k = 0; k < 8; k++) {
		if (k >= plen)
			break;
		if (c->name[0][k] != prefix[k])
			return false;
	}
#pragma unroll
	for (u32 k = 0; k < COMP_LEN; k++) {
		char ch = c->name[0][k];
		if (k < plen)
			continue;
		if (k >= len)
			break;
		if (!digits && ch >= 'a' && ch <= 'z' && run < letters) {
			run++;
			continue;
		}
		if (ch >= '0' && ch <= '9') {
			digits = true;
			continue;
		}
		if (digits && (ch == 'n' || ch == 'p'))
			continue;
		return false;
	}
	return letters ? run > 0 : digits;
}

/* match_absolute names a path as the process sees it from its root, for
 * refused opens: the conventional places of procfs, sysfs and /dev. */
static __always_inline u8 match_absolute(struct comps *c, bool write)
{
	if (c->n == 0)
		return PATH_NONE;
	if (write) {
		if (BELOW3("proc", "sys", "kernel"))
			return PATH_PROC_SYS;
		if (c->n >= 1 && comp_eq(c, c->n - 1, "proc", sizeof("proc")) && proc_mem(c, 1))
			return PATH_PROC_MEM;
		if (depth_is(c, 2) && IS(0, "sysrq-trigger") && IS(1, "proc"))
			return PATH_PROC_SYS;
		if (depth_is(c, 5) && IS(0, "register") && IS(1, "binfmt_misc") && IS(2, "fs") && IS(3, "sys") &&
		    IS(4, "proc"))
			return PATH_PROC_SYS;
		/* Where cgroup v1 hierarchies are mounted: a file merely so named
		 * elsewhere is no release agent. */
		if ((IS(0, "release_agent") || IS(0, "notify_on_release")) && BELOW3("sys", "fs", "cgroup"))
			return PATH_RELEASE_AGENT;
		if (depth_is(c, 3) && IS(0, "uevent_helper") && IS(1, "kernel") && IS(2, "sys"))
			return PATH_UEVENT_HELPER;
	}
	if (depth_is(c, 2) && IS(1, "dev")) {
		if (disk_name(c, "sd", 2, 3) || disk_name(c, "vd", 2, 3) || disk_name(c, "hd", 2, 1) ||
		    disk_name(c, "xvd", 3, 3) || disk_name(c, "nvme", 4, 0) || disk_name(c, "dm-", 3, 0) ||
		    disk_name(c, "mmcblk", 6, 0) || disk_name(c, "loop", 4, 0) || disk_name(c, "nbd", 3, 0) ||
		    disk_name(c, "md", 2, 0) || disk_name(c, "sr", 2, 0) || IS(0, "mem") || IS(0, "kmem") || IS(0, "port"))
			return PATH_BLOCK_DEVICE;
	}
	return PATH_NONE;
}

/* comp_add appends a component read from kernel memory. */
static __always_inline void comp_add(struct comps *c, const char *name, u32 len)
{
	u32 i = c->n;
	if (i >= COMPS)
		return;
	i &= COMPS - 1;
	c->len[i] = len;
	bpf_probe_read_kernel_str(c->name[i], COMP_LEN, name);
	if (len < COMP_LEN)
		c->name[i][BOUND(len, COMP_LEN - 1)] = 0;
	c->n++;
}

/* stk_eq reports whether stack entry i is exactly the literal of n bytes. */
static __always_inline bool stk_eq(struct path_scratch *s, u64 i, const char *lit, u32 n)
{
	if (i >= COMPS || s->stk_len[BOUND(i, COMPS - 1)] != n - 1)
		return false;
#pragma unroll
	for (u32 k = 0; k < COMP_LEN; k++) {
		if (k >= n - 1)
			return true;
		if (s->stk[BOUND(i, COMPS - 1)][k] != lit[k])
			return false;
	}
	return false;
}
#define STK_IS(i, lit) stk_eq(s, i, lit, sizeof(lit))

/* stk_number returns stack entry i as a decimal number, or -1. */
static __always_inline s64 stk_number(struct path_scratch *s, u64 i)
{
	u32 len;
	s64 v = 0;

	if (i >= COMPS)
		return -1;
	len = s->stk_len[BOUND(i, COMPS - 1)];
	if (len == 0 || len > 9)
		return -1;
#pragma unroll
	for (u32 k = 0; k < 9; k++) {
		char ch = s->stk[BOUND(i, COMPS - 1)][k];
		if (k >= len)
			break;
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	return v;
}

/* A task directory of procfs: self, thread-self (the caller's), or a
 * number (some task's). */
enum task_dir { NOT_TASK_DIR = 0, OWN_TASK_DIR, SOME_TASK_DIR };

static __always_inline u8 task_dir(struct path_scratch *s, u64 i)
{
	if (STK_IS(i, "self") || STK_IS(i, "thread-self"))
		return OWN_TASK_DIR;
	return stk_number(s, i) >= 0 ? SOME_TASK_DIR : NOT_TASK_DIR;
}

/* jump follows a magic link the top of the stack has just completed:
 * <task>/root, <task>/cwd, <task>/fd/N, each also under <task>/task/<tid>,
 * and /dev/fd/N; <task> is self, thread-self or a number under /proc from a
 * root, or under procfs's root as the starting directory, or the starting
 * directory itself when that is a task directory of procfs. What was on the
 * stack is gone: the rest is relative to where the link points. Another
 * task's root is taken for the caller's (in a container, the container's);
 * its working directory and descriptors are not followed. */
static __always_inline void jump(struct path_scratch *s)
{
	struct loop_state *l = &s->l;
	u64 n = l->n, q;
	u8 td;
	s64 fd;

	if (l->ovf || (l->anchor != ANCHOR_START && l->anchor != ANCHOR_ROOT))
		return;
	/* q: where the task directory's own entries start on the stack. */
	if (l->rooted && n >= 3 && STK_IS(0, "proc") && (td = task_dir(s, 1)) != NOT_TASK_DIR)
		q = 2;
	else if (l->proc_dir == 1 && l->anchor == ANCHOR_START && l->skip == 0 && n >= 2 &&
		 (td = task_dir(s, 0)) != NOT_TASK_DIR)
		q = 1;
	else if (l->proc_dir == 2 && l->anchor == ANCHOR_START && l->skip == 0 && n >= 1)
		td = SOME_TASK_DIR, q = 0;
	else
		q = 99;
	if (q == 99) {
		/* /dev/fd is a link to /proc/self/fd. */
		if (l->rooted && n == 3 && STK_IS(0, "dev") && STK_IS(1, "fd") && (fd = stk_number(s, 2)) >= 0) {
			l->anchor = ANCHOR_FD;
			l->anchor_fd = fd;
			l->rooted = 0;
			l->n = 0;
			l->skip = 0;
		}
		return;
	}
	if (n >= q + 3 && STK_IS(q, "task") && stk_number(s, q + 1) >= 0)
		q += 2; /* one of the task's threads: the same root, cwd and descriptors */
	if (n == q + 1 && STK_IS(q, "root")) {
		l->anchor = ANCHOR_ROOT;
		l->rooted = 1;
	} else if (n == q + 1 && STK_IS(q, "cwd")) {
		l->anchor = td == OWN_TASK_DIR ? ANCHOR_CWD : ANCHOR_UNKNOWN;
		l->rooted = 0;
	} else if (n == q + 2 && STK_IS(q, "fd") && (fd = stk_number(s, q + 1)) >= 0) {
		l->anchor = td == OWN_TASK_DIR ? ANCHOR_FD : ANCHOR_UNKNOWN;
		l->anchor_fd = fd;
		l->rooted = 0;
	} else {
		return;
	}
	l->n = 0;
	l->skip = 0;
}

static __always_inline void dev_fd_parent(struct path_scratch *s)
{
	__builtin_memcpy(s->stk[0], "proc", 5);
	s->stk_len[0] = 4;
	__builtin_memcpy(s->stk[1], "self", 5);
	s->stk_len[1] = 4;
}

/* The forward walk of a path string, as the kernel resolves it:
 * components from the start, "." and empty ones dropped, ".." taking the
 * last one back (at a root it stays there; above the starting directory it
 * is counted in skip, for the dentry walk to climb), procfs's magic links
 * followed. No length is too long: the loop runs over the whole string. */
static long resolve_step(u64 idx, void *unused)
{
	struct path_scratch *s = scratch();
	struct loop_state *l;
	s64 i;
	u32 start, len;
	char ch;

	if (!s)
		return 1;
	l = &s->l;
	i = l->pos;
	ch = i < l->end ? s->buf[BOUND(i, PATH_BUF - 1)] : '/';
	if (ch != '/') {
		l->pos++;
		return 0;
	}
	start = (u32)l->start;
	len = (u32)(i - (s64)l->start);
	if (len == 0 || (len == 1 && s->buf[BOUND(start, PATH_BUF - 1)] == '.')) {
		/* "//" or "." */
	} else if (len == 2 && s->buf[BOUND(start, PATH_BUF - 1)] == '.' && s->buf[BOUND(start + 1, PATH_BUF - 1)] == '.') {
		if (l->ovf)
			l->ovf--;
		else if (l->rooted && l->n == 2 && STK_IS(0, "dev") && STK_IS(1, "fd"))
			dev_fd_parent(s); /* /dev/fd is a link to /proc/self/fd: its ".." is /proc/self */
		else if (l->n)
			l->n--;
		else if (!l->rooted)
			l->skip++;
	} else if (l->n >= COMPS) {
		l->ovf++;
	} else {
		u32 n = BOUND(l->n, COMPS - 1);
		s->stk_len[n] = len;
		for (u32 k = 0; k < COMP_LEN - 1; k++) {
			if (k >= len)
				break;
			s->stk[n][k] = s->buf[BOUND(start + k, PATH_BUF - 1)];
		}
		s->stk[n][BOUND(len < COMP_LEN - 1 ? len : COMP_LEN - 1, COMP_LEN - 1)] = 0;
		l->n++;
		jump(s);
	}
	l->start = i + 1;
	l->pos = i + 1;
	return i >= l->end ? 1 : 0;
}

enum walk_mode {
	WALK_IN_FS = 0, /* d_parent up to the filesystem's root: what the object is */
	WALK_ABS = 1,   /* across mounts up to the process's root: where the process sees it */
};

static __always_inline struct mount *real_mount(struct vfsmount *v)
{
	return (struct mount *)((void *)v - bpf_core_field_offset(struct mount, mnt));
}

static long walk_step(u64 idx, void *unused)
{
	struct path_scratch *s = scratch();
	struct loop_state *l;
	struct dentry *d, *parent;
	struct mount *m, *up;

	if (!s)
		return 1;
	l = &s->l;
	d = (struct dentry *)l->d;
	m = (struct mount *)l->m;
	parent = BPF_CORE_READ(d, d_parent);
	if (l->mode == WALK_ABS) {
		if (l->d == l->root_d && l->m == l->root_m) {
			l->skip = 0; /* ".." at the root stays there */
			s->c.top = 1;
			return 1;
		}
		if (d == BPF_CORE_READ(m, mnt.mnt_root)) {
			up = BPF_CORE_READ(m, mnt_parent);
			if (up == m) {
				s->c.unknown = 1; /* a root outside the process's view */
				return 1;
			}
			l->d = (u64)BPF_CORE_READ(m, mnt_mountpoint);
			l->m = (u64)up;
			return 0;
		}
	} else if (d == parent) {
		if (l->skip)
			s->c.bad = 1; /* ".." would have crossed into another mount */
		else
			s->c.top = 1;
		return 1;
	}
	if (l->skip) {
		l->skip--;
	} else {
		if (s->c.n >= COMPS)
			return 1;
		comp_add(&s->c, (const char *)BPF_CORE_READ(d, d_name.name), BPF_CORE_READ(d, d_name.len));
	}
	l->d = (u64)parent;
	return 0;
}

/* A dentry and the mount it is seen through. */
struct place {
	struct dentry *d;
	struct vfsmount *m;
};

/* walk continues the components in s->c from a dentry upwards. */
static __always_inline void walk(struct path_scratch *s, struct place from, struct place root, u64 skip, u8 mode)
{
	long n;

	s->l.d = (u64)from.d;
	s->l.m = (u64)real_mount(from.m);
	s->l.root_d = (u64)root.d;
	s->l.root_m = (u64)real_mount(root.m);
	s->l.skip = skip;
	s->l.mode = mode;
	n = bpf_loop(PATH_BUF, walk_step, 0, 0);
	if (n >= PATH_BUF && !s->c.top && !s->c.bad)
		s->c.unknown = 1;
}

static __always_inline void comps_reset(struct comps *c, u32 n)
{
	c->n = n;
	c->top = 0;
	c->unknown = 0;
	c->bad = 0;
}

/* classify_file names an opened file by what it is. */
static __always_inline u8 classify_file(struct file *f, bool *write_out)
{
	struct file_facts ff = {};
	unsigned long magic;
	struct path_scratch *s;
	struct place at;
	u8 sub;

	file_facts(f, &ff);
	*write_out = ff.write;
	if ((ff.mode & S_IFMT) == S_IFBLK)
		return PATH_BLOCK_DEVICE;
	if ((ff.mode & S_IFMT) == S_IFCHR) {
		if (ff.rdev == KDEV(MEM_MAJOR, 1) || ff.rdev == KDEV(MEM_MAJOR, 2) || ff.rdev == KDEV(MEM_MAJOR, 4))
			return PATH_BLOCK_DEVICE;
		return PATH_NONE;
	}
	if (!ff.write)
		return PATH_NONE;
	magic = ff.magic;
	if (magic != PROC_SUPER_MAGIC && magic != CGROUP_SUPER_MAGIC && magic != SYSFS_MAGIC && magic != BINFMTFS_MAGIC)
		return PATH_NONE;
	s = scratch();
	if (!s)
		return PATH_NONE;
	comps_reset(&s->c, 0);
	at.d = BPF_CORE_READ(f, f_path.dentry);
	at.m = BPF_CORE_READ(f, f_path.mnt);
	walk(s, at, at, 0, WALK_IN_FS);
	sub = match_in_fs(&s->c, magic, true);
	/* /proc/<pid>/mem keeps the address space it was opened for: the
	 * caller's own is no other task's. */
	if (sub == PATH_PROC_MEM) {
		struct task_struct *cur = bpf_get_current_task_btf();
		u64 opened_for = 0;
		bpf_core_read(&opened_for, sizeof(opened_for), &f->private_data);
		if (opened_for == (u64)cur->mm)
			return PATH_NONE;
	}
	return sub;
}

/* classify_path names what a refused open would have reached: the path
 * string folded from its end, continued from the directory it is relative
 * to (the process's root, its working directory or dirfd), as the object
 * it is inside that directory's filesystem and as the process sees it from
 * its root. kernel says whether name points to kernel memory (io_uring's
 * own copy) or to the caller's. */
static __always_inline u8 classify_path(struct task_struct *t, long dirfd, const void *name, bool kernel, bool write,
					bool in_root)
{
	struct path_scratch *s = scratch();
	struct place dir, root;
	struct dentry *dd;
	struct file *df;
	u64 skip;
	unsigned long magic;
	long len;
	u32 tail;
	u8 sub;

	if (!s || !name)
		return PATH_NONE;
	if (kernel)
		len = bpf_probe_read_kernel_str(s->buf, PATH_BUF, name);
	else
		len = bpf_probe_read_user_str(s->buf, PATH_BUF, name);
	if (len <= 1)
		return PATH_NONE;
	len--; /* without the NUL */

	/* Where the call starts: the root for an absolute path (or, with
	 * in_root, the dirfd as openat2's RESOLVE_IN_ROOT makes it), else the
	 * working directory or dirfd. */
	root.d = BPF_CORE_READ(t, fs, root.dentry);
	root.m = BPF_CORE_READ(t, fs, root.mnt);
	if ((int)dirfd == AT_FDCWD) {
		dir.d = BPF_CORE_READ(t, fs, pwd.dentry);
		dir.m = BPF_CORE_READ(t, fs, pwd.mnt);
	} else {
		df = task_file(t, dirfd);
		if (!df)
			return PATH_NONE;
		dir.d = BPF_CORE_READ(df, f_path.dentry);
		dir.m = BPF_CORE_READ(df, f_path.mnt);
	}
	if (in_root)
		root = dir;
	else if (s->buf[0] == '/')
		dir = root;

	s->l.pos = 0;
	s->l.start = 0;
	s->l.end = len;
	s->l.skip = 0;
	s->l.n = 0;
	s->l.ovf = 0;
	/* From the process's root, ".." stays there and /proc is procfs. */
	s->l.rooted = s->buf[0] == '/' || in_root || (dir.d == root.d && dir.m == root.m);
	s->l.anchor = ANCHOR_START;
	s->l.anchor_fd = -1;
	dd = dir.d;
	magic = BPF_CORE_READ(dd, d_sb, s_magic);
	/* 1: procfs's root; 2: a directory right below it (a task's). */
	s->l.proc_dir = 0;
	if (!s->l.rooted && magic == PROC_SUPER_MAGIC) {
		struct dentry *up = BPF_CORE_READ(dd, d_parent);
		if (dd == up)
			s->l.proc_dir = 1;
		else if (up == BPF_CORE_READ(up, d_parent))
			s->l.proc_dir = 2;
	}
	bpf_loop(PATH_BUF + 1, resolve_step, 0, 0);
	if (s->l.ovf) {
		/* Deeper than COMPS components: every pattern is anchored
		 * and none is that deep (docs/security-metrics.md). */
		return PATH_NONE;
	}
	switch (s->l.anchor) {
	case ANCHOR_ROOT:
		dir = root;
		break;
	case ANCHOR_CWD:
		dir.d = BPF_CORE_READ(t, fs, pwd.dentry);
		dir.m = BPF_CORE_READ(t, fs, pwd.mnt);
		break;
	case ANCHOR_FD:
		/* The file itself when nothing follows: walking from it names it. */
		df = task_file(t, s->l.anchor_fd);
		if (!df)
			return PATH_NONE;
		dir.d = BPF_CORE_READ(df, f_path.dentry);
		dir.m = BPF_CORE_READ(df, f_path.mnt);
		break;
	case ANCHOR_UNKNOWN:
		return PATH_NONE; /* another task's: not followed (docs/security-metrics.md) */
	}
	skip = s->l.skip;
	/* The components, deepest first, as the dentry walk continues them. */
	comps_reset(&s->c, 0);
	tail = (u32)s->l.n;
	for (u32 k = 0; k < COMPS; k++) {
		if (k >= tail)
			break;
		__builtin_memcpy(s->c.name[k], s->stk[BOUND(tail - 1 - k, COMPS - 1)], COMP_LEN);
		s->c.len[k] = s->stk_len[BOUND(tail - 1 - k, COMPS - 1)];
	}
	s->c.n = tail;

	/* The object, if the path stays inside the directory's filesystem. */
	dd = dir.d;
	magic = BPF_CORE_READ(dd, d_sb, s_magic);
	if (magic == PROC_SUPER_MAGIC || magic == CGROUP_SUPER_MAGIC || magic == SYSFS_MAGIC || magic == BINFMTFS_MAGIC) {
		walk(s, dir, root, skip, WALK_IN_FS);
		sub = match_in_fs(&s->c, magic, write);
		if (sub != PATH_NONE)
			return sub;
		comps_reset(&s->c, tail);
	}
	/* The path as the process sees it from its root. */
	walk(s, dir, root, skip, WALK_ABS);
	return match_absolute(&s->c, write);
}

/* Runtime API sockets, by the inode of their file (set by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct sock_id);
	__type(value, u8);
} runtime_sockets SEC(".maps");

/* Container runtime processes (dockerd, containerd, shims, cri-o, podman),
 * by host tgid (set by user space): listeners of abstract sockets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u8);
} runtime_pids SEC(".maps");

/* TCP ports of runtime APIs on the host (2375, 2376 by default). */
const volatile u16 runtime_ports[4] = {};

static __always_inline bool runtime_port(u16 port_be)
{
	u16 port = __builtin_bswap16(port_be);
#pragma unroll
	for (int i = 0; i < 4; i++)
		if (runtime_ports[i] && runtime_ports[i] == port)
			return true;
	return false;
}

/* classify_connected names the peer of a connected socket. */
static __always_inline u8 classify_connected(struct file *f)
{
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family == AF_UNIX) {
		struct sock *peer = BPF_CORE_READ((struct unix_sock *)sk, peer);
		struct dentry *d;
		struct pid *pid;

		if (peer) {
			d = BPF_CORE_READ((struct unix_sock *)peer, path.dentry);
			if (d) {
				struct sock_id id = {
					.ino = BPF_CORE_READ(d, d_inode, i_ino),
					.dev = BPF_CORE_READ(d, d_inode, i_sb, s_dev),
				};
				if (bpf_map_lookup_elem(&runtime_sockets, &id))
					return PATH_RUNTIME_SOCKET;
			}
		}
		/* For a stream socket, the pid that listened on the other end. */
		pid = BPF_CORE_READ(sk, sk_peer_pid);
		if (pid) {
			u32 nr = BPF_CORE_READ(pid, numbers[0].nr);
			if (bpf_map_lookup_elem(&runtime_pids, &nr))
				return PATH_RUNTIME_SOCKET;
		}
		return PATH_NONE;
	}
	if (family == AF_INET || family == AF_INET6) {
		if (runtime_port(BPF_CORE_READ(sk, __sk_common.skc_dport)))
			return PATH_RUNTIME_SOCKET;
	}
	return PATH_NONE;
}

static long base_step(u64 i, void *unused)
{
	struct path_scratch *s = scratch();
	char ch;

	if (!s)
		return 1;
	ch = s->buf[BOUND(i, 127)];
	if (ch == 0 && i > 0) {
		s->l.end = i;
		return 1;
	}
	if (ch == '/')
		s->l.start = i + 1;
	return 0;
}

static long copy_step(u64 i, void *unused)
{
	struct path_scratch *s = scratch();

	if (!s)
		return 1;
	s->c.name[0][BOUND(i, COMP_LEN - 1)] = s->buf[BOUND(s->l.start + i, 127)];
	return 0;
}

/* classify_sockaddr names a refused connect by the address it asked for:
 * the well-known runtime socket names (the length the caller passed, not a
 * NUL, ends the name, as the kernel reads it) and the runtime TCP ports. */
static __always_inline u8 classify_sockaddr(const void *addr, long addrlen, bool kernel, char *detail)
{
	struct path_scratch *s = scratch();
	struct comps *c;
	u16 family = 0;
	u32 len;

	if (!s || !addr || addrlen < 2)
		return PATH_NONE;
	if (kernel)
		bpf_probe_read_kernel(&family, sizeof(family), addr);
	else
		bpf_probe_read_user(&family, sizeof(family), addr);
	if (family == AF_INET || family == AF_INET6) {
		u16 port = 0;
		if (kernel)
			bpf_probe_read_kernel(&port, sizeof(port), addr + 2);
		else
			bpf_probe_read_user(&port, sizeof(port), addr + 2);
		return runtime_port(port) ? PATH_RUNTIME_SOCKET : PATH_NONE;
	}
	if (family != AF_UNIX)
		return PATH_NONE;
	len = addrlen - 2;
	if (len > 108)
		len = 108;
	if (len == 0)
		return PATH_NONE;
	__builtin_memset(s->buf, 0, 112);
	if (kernel)
		bpf_probe_read_kernel(s->buf, BOUND(len, 127), addr + 2);
	else
		bpf_probe_read_user(s->buf, BOUND(len, 127), addr + 2);
	s->buf[BOUND(len, 127)] = 0;
	if (detail)
		bpf_probe_read_kernel_str(detail, 112, s->buf[0] ? s->buf : s->buf + 1);
	/* The basename: after the last '/' before the first NUL. */
	c = &s->c;
	comps_reset(c, 0);
	s->l.start = 0;
	s->l.end = len;
	bpf_loop(len, base_step, 0, 0);
	if (s->l.end <= (s64)s->l.start)
		return PATH_NONE;
	len = s->l.end - s->l.start;
	c->len[0] = len;
	bpf_loop(len < COMP_LEN - 1 ? len : COMP_LEN - 1, copy_step, 0, 0);
	c->name[0][BOUND(len < COMP_LEN - 1 ? len : COMP_LEN - 1, COMP_LEN - 1)] = 0;
	c->n = 1;
	if (IS(0, "docker.sock") || IS(0, "containerd.sock") || IS(0, "containerd.sock.ttrpc") || IS(0, "crio.sock") ||
	    IS(0, "podman.sock") || IS(0, "dockershim.sock") || IS(0, "cri-dockerd.sock"))
		return PATH_RUNTIME_SOCKET;
	return PATH_NONE;
}

/* What a path or socket sub-class means as a technique. */
static __always_inline u8 path_technique(u8 sub)
{
	switch (sub) {
	case PATH_PROC_SYS:
		return TECH_PROC_SYS_WRITE;
	case PATH_RELEASE_AGENT:
		return TECH_RELEASE_AGENT;
	case PATH_BLOCK_DEVICE:
		return TECH_BLOCK_DEVICE;
	case PATH_RUNTIME_SOCKET:
		return TECH_RUNTIME_SOCKET;
	case PATH_UEVENT_HELPER:
		return TECH_KERNEL_INTERFACE;
	case PATH_PROC_MEM:
		return TECH_PTRACE;
	}
	return TECH_NONE;
}

/* ptrace_changes_tracee reports whether a ptrace request attaches to
 * another task or changes it: its memory, registers, signals, syscalls,
 * tracing options (PTRACE_O_SUSPEND_SECCOMP turns the tracee's seccomp
 * off) or life (after PTRACE_TRACEME the tracer needs no attach). Reads and
 * resumes, with or without a signal a kill() could send, are not counted. */
static __always_inline bool ptrace_changes_tracee(u64 req)
{
	switch (req) {
	case PTRACE_ATTACH:
	case PTRACE_SEIZE:
	case PTRACE_KILL:
	case PTRACE_OLDSETOPTIONS:
	case PTRACE_SETOPTIONS:
	case PTRACE_POKETEXT:
	case PTRACE_POKEDATA:
	case PTRACE_POKEUSR:
	case PTRACE_SETREGS:
	case PTRACE_SETFPREGS:
	case PTRACE_SETFPXREGS:
	case COMPAT_PTRACE_SET_SYSCALL:
	case PTRACE_SET_THREAD_AREA:
	case COMPAT_PTRACE_SETVFPREGS:
	case PTRACE_ARCH_PRCTL:
	case PTRACE_POKEMTETAGS:
	case PTRACE_SETSIGINFO:
	case PTRACE_SETREGSET:
	case PTRACE_SETSIGMASK:
	case PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG:
	case PTRACE_SET_SYSCALL_INFO:
		return true;
	}
	return false;
}

static __always_inline bool open_for_write(u64 flags)
{
	return (flags & O_ACCMODE) != 0 || (flags & (O_CREAT | O_TRUNC));
}

/* mknod of a block device node, or of /dev/mem, /dev/kmem, /dev/port. */
static __always_inline bool device_node(u32 mode, u32 dev)
{
	u32 major = (dev & 0xfff00) >> 8;
	u32 minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
	if ((mode & S_IFMT) == S_IFBLK)
		return true;
	return (mode & S_IFMT) == S_IFCHR && major == MEM_MAJOR && (minor == 1 || minor == 2 || minor == 4);
}

#endif
