/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only) */
/*
 * Architecture-neutral access to a syscall's number, ABI and arguments, as
 * the syscall tracepoints see them (the task's saved user registers).
 * Everything else in breakwater's programs is architecture-free.
 */
#ifndef BREAKWATER_ARCH_H
#define BREAKWATER_ARCH_H

#include "types.h"

/* A kfunc of 6.2 on: a typed pointer from an address, reads without a
 * helper call. Weak: older kernels take the other branch. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym)                                                                                           \
	({                                                                                                             \
		_Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak");                      \
		!!sym;                                                                                                 \
	})
#endif

/* Set by user space to take the paths of kernels without bpf_rdonly_cast
 * (tests of that fallback). */
const volatile bool no_rdonly_cast = false;
#define HAVE_RDONLY_CAST() (!no_rdonly_cast && bpf_ksym_exists(bpf_rdonly_cast))

/* The accessors below read a syscall's saved registers through a
 * struct pt_regs pointer: the kernel's own (cast with bpf_rdonly_cast where
 * the kernel has it, 6.2 on) or a copy in a map value (one probe read).
 * Field offsets are the running kernel's either way (CO-RE). */

#if defined(__TARGET_ARCH_arm64)

#define TIF_32BIT 22 /* arch/arm64/include/asm/thread_info.h */

static __always_inline u8 sc_abi(struct task_struct *t, long nr)
{
	return (t->thread_info.flags & (1UL << TIF_32BIT)) ? ABI_COMPAT : ABI_NATIVE;
}

/* The kernel runs the call its number names as an int: the upper half
 * of the register is not part of it. */
static __always_inline u32 sc_slot(long nr)
{
	unsigned long n = (unsigned long)(long)(int)nr;

	return n < SYSCALL_SLOTS ? (u32)n : OTHER_SLOT;
}

/* The syscall number as sys_exit sees it. */
static __always_inline long sc_nr(const struct pt_regs *r)
{
	return r->syscallno;
}

/* AArch64 and AArch32 pass arguments in x0-x5 / r0-r5; x0 is the return
 * value by sys_exit, orig_x0 keeps the first argument. */
static __always_inline u64 sc_arg(const struct pt_regs *r, u8 abi, int n)
{
	switch (n) {
	case 0:
		return r->orig_x0;
	case 1:
		return r->regs[1];
	case 2:
		return r->regs[2];
	case 3:
		return r->regs[3];
	case 4:
		return r->regs[4];
	default:
		return r->regs[5];
	}
}

/* rt_sigreturn (AArch64 139, AArch32 173) and sigreturn (AArch32 119)
 * rewrite the registers; their exit cannot be matched with their entry. */
static __always_inline bool sc_rewrites_regs(u8 abi, u32 slot)
{
	if (abi == ABI_NATIVE)
		return slot == 139;
	return slot == 173 || slot == 119;
}

#else /* x86_64 */

#define TS_COMPAT 0x0002 /* arch/x86/include/asm/thread_info.h */
#define X32_SYSCALL_BIT 0x40000000

static __always_inline u8 sc_abi(struct task_struct *t, long nr)
{
	if (t->thread_info.status & TS_COMPAT)
		return ABI_COMPAT;
	if (nr & X32_SYSCALL_BIT)
		return ABI_X32;
	return ABI_NATIVE;
}

/* The kernel runs the call its number names as an int (do_syscall_64):
 * the upper half of rax is not part of it, whatever it holds. */
static __always_inline u32 sc_slot(long nr)
{
	unsigned long n = (unsigned long)(long)(int)nr & ~(unsigned long)X32_SYSCALL_BIT;

	return n < SYSCALL_SLOTS ? (u32)n : OTHER_SLOT;
}

static __always_inline long sc_nr(const struct pt_regs *r)
{
	return (long)r->orig_ax;
}

/* x86_64 and x32: rdi rsi rdx r10 r8 r9; ia32: ebx ecx edx esi edi ebp,
 * zero-extended to 32 bits as the compat entry does. */
static __always_inline u64 sc_arg(const struct pt_regs *r, u8 abi, int n)
{
	if (abi == ABI_COMPAT) {
		switch (n) {
		case 0:
			return (u32)r->bx;
		case 1:
			return (u32)r->cx;
		case 2:
			return (u32)r->dx;
		case 3:
			return (u32)r->si;
		case 4:
			return (u32)r->di;
		default:
			return (u32)r->bp;
		}
	}
	switch (n) {
	case 0:
		return r->di;
	case 1:
		return r->si;
	case 2:
		return r->dx;
	case 3:
		return r->r10;
	case 4:
		return r->r8;
	default:
		return r->r9;
	}
}

/* rt_sigreturn (x86_64 15, x32 513, ia32 173) and sigreturn (ia32 119)
 * restore the registers; their exit cannot be matched with their entry. */
static __always_inline bool sc_rewrites_regs(u8 abi, u32 slot)
{
	switch (abi) {
	case ABI_NATIVE:
		return slot == 15;
	case ABI_X32:
		return slot == 513;
	default:
		return slot == 173 || slot == 119;
	}
}

#endif

/* sc_args_hash identifies one call (ABI, number and arguments) so that
 * sys_exit can tell a call that entered from one the seccomp filter refused
 * before sys_enter. The registers hold the arguments for the whole call. */
static __always_inline u64 sc_args_hash(const struct pt_regs *r, u8 abi, long nr)
{
	u64 h = ((u64)nr + 1) ^ ((u64)abi << 56);
	h ^= sc_arg(r, abi, 0) * 0x9e3779b97f4a7c15ULL;
	h ^= sc_arg(r, abi, 1) * 0xc2b2ae3d27d4eb4fULL;
	h ^= sc_arg(r, abi, 2) * 0x165667b19e3779f9ULL;
	h ^= sc_arg(r, abi, 3) * 0xd6e8feb86659fd93ULL;
	h ^= sc_arg(r, abi, 4) * 0xff51afd7ed558ccdULL;
	h ^= sc_arg(r, abi, 5) * 0xc4ceb9fe1a85ec53ULL;
	return h | 1; /* never 0, which means "no call in flight" */
}

#endif
