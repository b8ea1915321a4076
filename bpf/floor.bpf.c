// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
//go:build ignore

/*
 * Empty programs on breakwater's syscall hooks: what attaching any
 * tracepoint tool costs at all. `make bench` measures breakwater against it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

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
