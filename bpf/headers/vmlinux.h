/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only) */
/*
 * The minimal CO-RE header of breakwater: only the kernel types its
 * programs read, each with only the fields they touch. preserve_access_index
 * makes every field access a BTF relocation, so cilium/ebpf fixes the
 * offsets up against the running kernel's BTF at load time. Fields inside
 * the kernel's anonymous structs and unions are declared flat: CO-RE finds
 * them by name.
 */
#ifndef BREAKWATER_VMLINUX_H
#define BREAKWATER_VMLINUX_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u8 u8;
typedef __s8 s8;
typedef __u16 u16;
typedef __s16 s16;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_LRU_PERCPU_HASH = 10,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

enum {
	BPF_F_NO_PREALLOC = (1U << 0),
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = (1ULL << 0),
};

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

/* The registers a syscall entered with; arguments stay there for the whole call. */
#if defined(__TARGET_ARCH_arm64)
struct pt_regs {
	__u64 regs[31];
	__u64 orig_x0; /* regs[0] is the return value by sys_exit */
	__s32 syscallno;
};

struct thread_info {
	unsigned long flags; /* TIF_32BIT: an AArch32 (compat) task */
};
#else
struct pt_regs {
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long bp;
	unsigned long bx;
	unsigned long cx;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
};

struct thread_info {
	__u32 status; /* TS_COMPAT while an ia32 syscall runs */
};
#endif

/* Read as 8 raw bytes: u64 val since 6.3, u32 cap[2] before; same bytes on little-endian. */
typedef struct {
	__u64 val;
} kernel_cap_t;

struct user_namespace {
	int level; /* 0: the initial user namespace */
};

struct cred {
	kernel_cap_t cap_effective;
	struct user_namespace *user_ns;
};

struct super_block {
	unsigned long s_magic;
	__u32 s_dev;
};

struct inode {
	__u16 i_mode;
	__u32 i_rdev;
	unsigned long i_ino;
	struct super_block *i_sb;
	void *i_private;
};

struct qstr {
	__u32 len;
	const unsigned char *name;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
	struct super_block *d_sb;
};

struct vfsmount {
	struct dentry *mnt_root;
	struct super_block *mnt_sb;
};

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct inode *f_inode;
	struct path f_path;
	unsigned int f_mode;
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path root;
	struct path pwd;
};

struct seccomp {
	int mode;
};

struct upid {
	int nr;
};

struct pid {
	struct upid numbers[1];
};

struct bpf_local_storage;
struct css_set;

struct mnt_namespace;

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

struct mm_struct;

struct task_struct {
	struct thread_info thread_info;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	const struct cred *real_cred;
	const struct cred *cred;
	struct fs_struct *fs;
	struct files_struct *files;
	struct seccomp seccomp;
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
	struct bpf_local_storage *bpf_storage;
	struct mm_struct *mm;
};

struct sock_common {
	__be16 skc_dport;
	unsigned short skc_family;
};

struct sock {
	struct sock_common __sk_common;
	struct pid *sk_peer_pid;
};

struct socket {
	struct sock *sk;
};

struct unix_sock {
	struct sock sk;
	struct path path;
	struct sock *peer;
};

struct kernfs_node {
	__u64 id;
};

struct cgroup_root {
	int hierarchy_id;
};

struct cgroup;

struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
};

struct cgroup {
	struct cgroup_subsys_state self;
	struct kernfs_node *kn;
	struct cgroup_root *root;
	int level;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct linux_binprm;

/* Namespace type of an nsfs inode: ns_common.ns_type from 6.18 on, ops->type before. */
struct proc_ns_operations___pre618 {
	int type;
};

struct ns_common {
	__u32 ns_type;
};

struct ns_common___pre618 {
	const struct proc_ns_operations___pre618 *ops;
};

/* io_uring: a request, and the per-opcode data at its start. */
struct filename {
	const char *name;
};

struct open_how {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

struct io_open {
	struct file *file;
	int dfd;
	__u32 file_slot;
	struct filename *filename;
	struct open_how how;
};

struct io_connect {
	struct file *file;
	void *addr;
	int addr_len;
};

struct sockaddr_storage {
	unsigned short ss_family;
};

struct io_async_msghdr {
	struct sockaddr_storage addr;
};

struct io_kiocb {
	struct file *file;
	__u8 opcode;
	unsigned int flags; /* io_req_flags_t: u32, u64 from 6.9; the low bits are the SQE's flags */
	void *async_data;
};

struct io_uring_cqe {
	__s32 res;
};

#pragma clang attribute pop

#endif
