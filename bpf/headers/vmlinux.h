/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only) */
/*
 * The minimal CO-RE header of breakwater: only the kernel types its
 * programs read, each with only the fields they touch. preserve_access_index
 * makes every field access a BTF relocation, so libbpf/cilium-ebpf fix the
 * offsets up against the running kernel's BTF at load time.
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
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
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
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

/* x86_64 syscall registers: arguments stay in pt_regs for the whole call. */
struct pt_regs {
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
};

/* Read as 8 raw bytes: u64 val since 6.3, u32 cap[2] before; same bytes on little-endian. */
typedef struct {
	__u64 val;
} kernel_cap_t;

struct cred {
	kernel_cap_t cap_effective;
};

struct inode {
	void *i_private;
};

struct file {
	struct inode *f_inode;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	const struct cred *cred;
	struct files_struct *files;
};

struct kernfs_node {
	__u64 id;
};

struct cgroup_root {
	int hierarchy_id;
};

struct cgroup {
	struct kernfs_node *kn;
	struct cgroup_root *root;
	int level;
};

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

#pragma clang attribute pop

#endif
