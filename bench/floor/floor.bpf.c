// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
//go:build ignore

/*
 * Empty programs on every hook breakwater uses: what attaching any
 * tracepoint tool there costs at all. `make bench` measures breakwater
 * against it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("raw_tracepoint/sys_enter")
int floor_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int floor_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("tp_btf/task_newtask")
int BPF_PROG(floor_task_newtask)
{
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(floor_sched_process_exit)
{
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(floor_sched_process_exec)
{
	return 0;
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(floor_cgroup_attach_task)
{
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(floor_cgroup_mkdir)
{
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(floor_cgroup_rmdir)
{
	return 0;
}

SEC("tp_btf/cap_capable")
int BPF_PROG(floor_cap_capable)
{
	return 0;
}
