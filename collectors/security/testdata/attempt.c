// SPDX-License-Identifier: Apache-2.0
/*
 * attempt makes exactly one escape attempt of a technique (or n denied
 * unshare calls) from inside a container and reports the result. It makes
 * the attempt and stops there: files are opened and closed, never written;
 * what it mounts it unmounts. Built static by the tests, bind-mounted into
 * a busybox container.
 *
 *   attempt <technique> [arg]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(const char *what, long ret)
{
	if (ret < 0)
		printf("%s: blocked (%s)\n", what, strerror(errno));
	else
		printf("%s: allowed\n", what);
	return 0;
}

static int attempt(int argc, char **argv);
static int evade(int argc, char **argv);

int main(int argc, char **argv)
{
	return attempt(argc, argv);
}

static int attempt(int argc, char **argv)
{
	const char *t = argc > 1 ? argv[1] : "";
	const char *a = argc > 2 ? argv[2] : "";
	long r;

	if (!strcmp(t, "mount")) {
		mkdir("/tmp/bwmnt", 0700);
		r = mount("none", "/tmp/bwmnt", "tmpfs", 0, "");
		report(t, r);
		if (r == 0)
			umount("/tmp/bwmnt");
	} else if (!strcmp(t, "namespace")) {
		int fd = open("/proc/self/ns/uts", O_RDONLY);
		report(t, setns(fd, CLONE_NEWUTS));
	} else if (!strcmp(t, "unshare-user")) { /* n denied calls under default seccomp */
		int n = atoi(a);
		for (int i = 0; i < n; i++)
			r = unshare(CLONE_NEWUSER);
		report(t, r);
	} else if (!strcmp(t, "recon")) {
		/* What amicontained does: try the calls a default profile may
		 * refuse and say which were refused. Each with zero arguments:
		 * refused before it runs, or failing harmlessly (EFAULT, EINVAL,
		 * EPERM) when it does run. */
#if defined(__x86_64__)
		static const long calls[] = {
			SYS_acct, SYS_add_key, SYS_bpf, SYS_clock_adjtime, SYS_clock_settime, SYS_delete_module,
			SYS_finit_module, SYS_get_mempolicy, SYS_init_module, SYS_ioperm, SYS_iopl, SYS_kcmp,
			SYS_kexec_file_load, SYS_kexec_load, SYS_keyctl, SYS_mbind, SYS_mount, SYS_move_pages,
			SYS_name_to_handle_at, SYS_open_by_handle_at, SYS_perf_event_open, SYS_pivot_root,
			SYS_process_vm_readv, SYS_process_vm_writev, SYS_quotactl, SYS_reboot, SYS_request_key,
			SYS_set_mempolicy, SYS_setns, SYS_settimeofday, SYS_swapon, SYS_swapoff, SYS_sysfs,
			SYS_umount2, SYS_unshare, SYS_userfaultfd, SYS_ustat, SYS_fsopen, SYS_fsconfig, SYS_fsmount,
			SYS_fspick, SYS_move_mount, SYS_open_tree, SYS_mount_setattr, SYS_quotactl_fd, SYS_clone3,
			SYS_lookup_dcookie, SYS_nfsservctl, SYS_uselib, SYS__sysctl, SYS_create_module,
			SYS_get_kernel_syms, SYS_query_module, SYS_syslog, SYS_setdomainname,
			SYS_sethostname, SYS_io_pgetevents, SYS_pkey_alloc, SYS_mq_open, SYS_migrate_pages,
			SYS_set_mempolicy_home_node, SYS_landlock_create_ruleset, SYS_memfd_secret,
			SYS_process_madvise, SYS_futex_waitv,
		};
#else
		static const long calls[] = {SYS_mount, SYS_unshare, SYS_setns}; /* the list above is x86_64's */
#endif
		int refused = 0;
		for (unsigned i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
			if (syscall(calls[i], 0, 0, 0, 0, 0, 0) < 0 && (errno == EPERM || errno == EACCES || errno == ENOSYS))
				refused++;
		printf("recon: %d of %zu refused\n", refused, sizeof(calls) / sizeof(calls[0]));
	} else if (!strcmp(t, "many-denied")) { /* three distinct calls Docker's seccomp profile refuses */
		report("unshare", unshare(CLONE_NEWUSER));
		mkdir("/tmp/bwmnt", 0700);
		report("mount", mount("none", "/tmp/bwmnt", "tmpfs", 0, ""));
		report("umount2", umount2("/tmp/bwmnt", 0));
	} else if (!strcmp(t, "pivot_root")) {
		report(t, syscall(SYS_pivot_root, "/", "/"));
	} else if (!strcmp(t, "chroot")) {
		report(t, chroot("/"));
	} else if (!strcmp(t, "ptrace")) {
		/* A process of another user: attaching needs CAP_SYS_PTRACE. */
		pid_t child = fork();
		if (child == 0) {
			if (setuid(65534) != 0)
				_exit(1);
			pause();
			_exit(0);
		}
		usleep(200000);
		r = ptrace(PTRACE_ATTACH, child, 0, 0);
		report(t, r);
		if (r == 0) {
			waitpid(child, 0, 0);
			ptrace(PTRACE_DETACH, child, 0, 0);
		}
		kill(child, SIGKILL);
		waitpid(child, 0, 0);
	} else if (!strcmp(t, "kernel_module")) {
		report(t, syscall(SYS_finit_module, -1, "", 0));
	} else if (!strcmp(t, "kernel_interface")) {
		struct perf_event_attr attr = {.type = PERF_TYPE_SOFTWARE, .size = sizeof(attr),
					       .config = PERF_COUNT_SW_DUMMY, .disabled = 1};
		r = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
		report(t, r);
		if (r >= 0)
			close(r);
	} else if (!strcmp(t, "cgroup_release_agent")) {
		/* The classic exploit's first steps: a v1 hierarchy of our own,
		 * its release_agent opened for writing, and nothing written. */
		const char *path = a[0] ? a : "/sys/fs/cgroup/release_agent";
		int mounted = 0;
		if (!a[0]) {
			mkdir("/tmp/bwcg", 0700);
			mounted = mount("cgroup", "/tmp/bwcg", "cgroup", 0, "none,name=breakwatertest") == 0;
			if (mounted)
				path = "/tmp/bwcg/release_agent";
		}
		r = open(path, O_WRONLY);
		report(t, r);
		if (r >= 0)
			close(r);
		if (mounted)
			umount("/tmp/bwcg");
	} else if (!strcmp(t, "proc_sys_write")) {
		r = open("/proc/sys/kernel/core_pattern", O_WRONLY);
		report(t, r);
		if (r >= 0)
			close(r);
	} else if (!strcmp(t, "runtime_socket")) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		strcpy(sa.sun_path, "/var/run/docker.sock");
		report(t, connect(s, (struct sockaddr *)&sa, sizeof(sa)));
		close(s);
	} else if (!strcmp(t, "block_device")) {
		/* arg: major:minor of a host block device to make a node for. */
		const char *dev = "/dev/vda";
		unsigned maj, min;
		if (a[0] && sscanf(a, "%u:%u", &maj, &min) == 2) {
			dev = "/dev/vdbw"; /* under /dev/vd*, as a host disk would be */
			r = mknod(dev, S_IFBLK | 0600, makedev(maj, min));
			report("block_device mknod", r);
		}
		r = open(dev, O_RDONLY);
		report(t, r);
		if (r >= 0)
			close(r);
		if (a[0])
			unlink(dev);
	} else if (!strcmp(t, "control")) {
		/* Ordinary work: file IO, a child process, a sleep. */
		int fd = open("/tmp/control", O_CREAT | O_RDWR, 0600);
		write(fd, "ordinary", 8);
		close(fd);
		unlink("/tmp/control");
		if (fork() == 0)
			_exit(0);
		wait(0);
		usleep(100000);
		puts("control: done");
	} else {
		return evade(argc, argv);
	}
	return 0;
}

#include "evade.c"
