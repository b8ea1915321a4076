// SPDX-License-Identifier: Apache-2.0
/*
 * The attempts an attacker who has read breakwater's source would make to
 * slip past it: other names, other paths to the same object, other
 * interfaces (ia32, io_uring), other cgroups. Each makes the attempt and
 * stops there, like attempt.c: nothing is written to core_pattern or
 * release_agent, what is mounted is unmounted, what is made is removed.
 * Included by attempt.c.
 */
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <elf.h>
#include <sys/sendfile.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>

#define CORE "/proc/sys/kernel/core_pattern"

static int open_report(const char *what, long r)
{
	report(what, r);
	if (r >= 0)
		close(r);
	return 0;
}

#if defined(__x86_64__)
/* ia32 syscalls from 64-bit code: int $0x80 with i386 numbers and
 * arguments in ebx, ecx, edx, esi, edi. */
static long int80(long nr, long a, long b, long c, long d, long e)
{
	long r;
	__asm__ volatile("int $0x80"
			 : "=a"(r)
			 : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
			 : "memory", "r8", "r9", "r10", "r11");
	return r;
}

/* An int $0x80 result as a syscall() one: -1 and errno. */
static long ia32(long nr, long a, long b, long c, long d, long e)
{
	long r = int80(nr, a, b, c, d, e);
	if (r < 0 && r >= -4095) {
		errno = -r;
		return -1;
	}
	return r;
}
#elif defined(__i386__)
/* Built for i386 (gcc -m32), every syscall is an ia32 one already. */
static long ia32(long nr, long a, long b, long c, long d, long e)
{
	return syscall(nr, a, b, c, d, e);
}
#else
/* No ia32 ABI on this architecture: the ia32 attempts report ENOSYS. */
static long ia32(long nr, long a, long b, long c, long d, long e)
{
	(void)nr, (void)a, (void)b, (void)c, (void)d, (void)e;
	errno = ENOSYS;
	return -1;
}
#endif

#ifndef MAP_32BIT
#define MAP_32BIT 0
#endif

/* Pointers ia32 syscalls take must fit 32 bits: a page mapped low. */
static char *low_page(void)
{
	static char *p;
	if (!p)
		p = mmap((void *)0x10000, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_32BIT, -1, 0);
	return p == MAP_FAILED ? 0 : p;
}

/* unfaulted_pair maps one page of memory twice below 4 GiB: *w, to write
 * through, and the returned address, never touched in this process. */
static char *unfaulted_pair(unsigned **w)
{
	int fd = memfd_create("bwpair", 0);
	char *a, *b;
	if (fd < 0 || ftruncate(fd, 4096))
		return 0;
	a = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_32BIT, fd, 0);
	b = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_32BIT, fd, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		return 0;
	*w = (unsigned *)a;
	return b;
}

static struct {
	char *page;
	int listener;
} unmap_then_accept;

static void *unmap_then_accept_fn(void *unused)
{
	usleep(300 * 1000);
	munmap(unmap_then_accept.page, 4096);
	close(accept(unmap_then_accept.listener, 0, 0));
	close(accept(unmap_then_accept.listener, 0, 0));
	return 0;
}

/* stopped_tracee forks a child that asks to be traced by us and stops:
 * the tracer never attaches. */
static pid_t stopped_tracee(void)
{
	pid_t child = fork();
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		_exit(0);
	}
	waitpid(child, 0, 0);
	return child;
}

/* A minimal io_uring: one submission, waited for. */
struct ring {
	int fd;
	struct io_uring_sqe *sqes;
	unsigned *sq_tail, *sq_array, *sq_mask;
	struct io_uring_cqe *cqes;
	unsigned *cq_head, *cq_tail, *cq_mask;
};

static int ring_setup_n(struct ring *r, unsigned entries);

static int ring_setup(struct ring *r)
{
	return ring_setup_n(r, 4);
}

static int ring_setup_n(struct ring *r, unsigned entries)
{
	struct io_uring_params p = {};
	char *sq, *cq;
	r->fd = syscall(SYS_io_uring_setup, entries, &p);
	if (r->fd < 0)
		return -1;
	sq = mmap(0, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQ_RING);
	cq = mmap(0, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -1;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* ring_run submits one operation and returns its result as a syscall would. */
static long ring_run(struct ring *r, struct io_uring_sqe *sqe)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
	long res;
	r->sqes[idx] = *sqe;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, 0, 0) < 0)
		return -1;
	res = r->cqes[*r->cq_head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, *r->cq_head + 1, __ATOMIC_RELEASE);
	if (res < 0) {
		errno = -res;
		return -1;
	}
	return res;
}

/* ring_push queues an operation without submitting it. */
static void ring_push(struct ring *r, struct io_uring_sqe *sqe)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
	r->sqes[idx] = *sqe;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
}

/* ring_result returns the result of the completion with user_data, or
 * -ENODATA when none has come. */
static long ring_result(struct ring *r, unsigned long long user_data)
{
	long res = -ENODATA;
	while (*r->cq_head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
		struct io_uring_cqe *c = &r->cqes[*r->cq_head & *r->cq_mask];
		if (c->user_data == user_data)
			res = c->res;
		__atomic_store_n(r->cq_head, *r->cq_head + 1, __ATOMIC_RELEASE);
	}
	return res;
}

static long uring_openat(const char *path, int flags)
{
	struct ring r;
	struct io_uring_sqe sqe = {.opcode = IORING_OP_OPENAT, .fd = AT_FDCWD, .addr = (unsigned long)path, .open_flags = flags};
	if (ring_setup(&r))
		return -1;
	return ring_run(&r, &sqe);
}

static long uring_connect(int s, struct sockaddr *sa, socklen_t len)
{
	struct ring r;
	struct io_uring_sqe sqe = {.opcode = IORING_OP_CONNECT, .fd = s, .addr = (unsigned long)sa, .off = len};
	if (ring_setup(&r))
		return -1;
	return ring_run(&r, &sqe);
}

/* unix_addr fills a sockaddr_un for path and returns its exact length:
 * no NUL, and junk after it that a reader of NUL-terminated strings would
 * take for part of the name. */
static socklen_t unix_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 'X', sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, strlen(path));
	return offsetof(struct sockaddr_un, sun_path) + strlen(path);
}

/* own_cgroup returns the container's cgroup v2 path from /proc/self/cgroup. */
static int own_cgroup(char *out, size_t n)
{
	char line[512];
	FILE *f = fopen("/proc/self/cgroup", "r");
	int found = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, n, "%s", line + 3);
			found = 1;
		}
	}
	if (f)
		fclose(f);
	return found ? 0 : -1;
}

static int write_pid(const char *procs)
{
	char buf[32];
	int fd = open(procs, O_WRONLY), n;
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%d", getpid());
	n = write(fd, buf, n) == n ? 0 : -1;
	close(fd);
	return n;
}

static int evade(int argc, char **argv)
{
	const char *t = argc > 1 ? argv[1] : "";
	const char *a = argc > 2 ? argv[2] : "";
	char path[4096];
	long r;

	if (!strcmp(t, "as-comm")) {
		/* as-comm NAME TECHNIQUE...: call itself NAME first. */
		prctl(PR_SET_NAME, a, 0, 0, 0);
		return attempt(argc - 2, argv + 2);
	} else if (!strcmp(t, "reexec")) {
		/* reexec TECHNIQUE...: run again as /proc/self/exe, comm "exe". */
		argv[2 - 1] = "exe";
		execv("/proc/self/exe", argv + 1);
		perror("execv");
		return 1;
	} else if (!strcmp(t, "cgroup-move")) {
		/* cgroup-move sub|out TECHNIQUE...: move to a sub-cgroup of the
		 * container, or out of its tree into one made at the top, then
		 * attempt, then come back and remove what was made. */
		char own[512], mnt[] = "/tmp/bwcg2", dir[1024], procs[1100], back[1100];
		if (own_cgroup(own, sizeof(own)))
			return 1;
		mkdir(mnt, 0700);
		if (mount("none", mnt, "cgroup2", 0, "")) {
			report("cgroup2 mount", -1);
			return 1;
		}
		if (!strcmp(a, "sub"))
			snprintf(dir, sizeof(dir), "%s%s/bwsub", mnt, own);
		else
			snprintf(dir, sizeof(dir), "%s/bw-moved-out-%d", mnt, getpid());
		mkdir(dir, 0755);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		snprintf(back, sizeof(back), "%s%s/cgroup.procs", mnt, own);
		if (write_pid(procs)) {
			report("cgroup move", -1);
		} else {
			printf("moved to %s\n", dir + strlen(mnt));
			fflush(stdout);
			attempt(argc - 2, argv + 2);
			write_pid(back);
		}
		rmdir(dir);
		umount(mnt);
		return 0;
	} else if (!strcmp(t, "lookalike-sub")) {
		/* A sub-cgroup named like a container id, the attempt made from it. */
		char own[512], mnt[] = "/tmp/bwcg2", dir[1024], procs[1100], back[1100];
		if (own_cgroup(own, sizeof(own)))
			return 1;
		mkdir(mnt, 0700);
		if (mount("none", mnt, "cgroup2", 0, ""))
			return 1;
		snprintf(dir, sizeof(dir), "%s%s/%s", mnt, own, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
		mkdir(dir, 0755);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		snprintf(back, sizeof(back), "%s%s/cgroup.procs", mnt, own);
		if (!write_pid(procs)) {
			attempt(argc - 1, argv + 1);
			write_pid(back);
		}
		rmdir(dir);
		umount(mnt);
		return 0;
	} else if (!strcmp(t, "subcgroup-flood")) {
		/* subcgroup-flood N: make N sub-cgroups, then remove them. */
		char own[512], mnt[] = "/tmp/bwcg2", dir[1024];
		int n = atoi(a), made = 0;
		if (own_cgroup(own, sizeof(own)))
			return 1;
		mkdir(mnt, 0700);
		if (mount("none", mnt, "cgroup2", 0, ""))
			return 1;
		for (int i = 0; i < n; i++) {
			snprintf(dir, sizeof(dir), "%s%s/flood-%d", mnt, own, i);
			made += mkdir(dir, 0755) == 0;
		}
		printf("made %d sub-cgroups\n", made);
		for (int i = 0; i < n; i++) {
			snprintf(dir, sizeof(dir), "%s%s/flood-%d", mnt, own, i);
			rmdir(dir);
		}
		umount(mnt);
		return 0;
	} else if (!strcmp(t, "ia32-unshare")) {
		report(t, ia32(310, CLONE_NEWUSER, 0, 0, 0, 0));
	} else if (!strcmp(t, "ia32-mount")) {
		char *p = low_page();
		strcpy(p, "none");
		strcpy(p + 64, "/tmp/bwmnt32");
		strcpy(p + 128, "tmpfs");
		mkdir(p + 64, 0700);
		r = ia32(21, (long)p, (long)p + 64, (long)p + 128, 0, 0);
		report(t, r);
		if (r == 0)
			umount(p + 64);
	} else if (!strcmp(t, "ia32-open-core")) {
		char *p = low_page();
		strcpy(p, CORE);
		open_report(t, ia32(5, (long)p, O_WRONLY, 0, 0, 0));
	} else if (!strcmp(t, "ia32-socketcall")) {
		/* socketcall(SYS_CONNECT, {fd, addr, len}) to the Docker socket name. */
		char *p = low_page();
		struct sockaddr_un *sa = (struct sockaddr_un *)(p + 256);
		unsigned *args = (unsigned *)p;
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		args[0] = s;
		args[1] = (unsigned)(unsigned long)sa;
		args[2] = unix_addr(sa, a[0] ? a : "/var/run/docker.sock");
		report(t, ia32(102, 3, (long)args, 0, 0, 0));
		close(s);
	} else if (!strcmp(t, "ia32-socketcall-unfaulted")) {
		/* The same connect, its argument block in a page this mapping
		 * has never touched (written through another mapping of the same
		 * memory): a probe read at entry fails, the kernel's copy does not. */
		struct sockaddr_un *sa;
		unsigned *args;
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		char *a32 = unfaulted_pair(&args);
		if (!a32)
			return 1;
		sa = (struct sockaddr_un *)((char *)args + 256);
		args[0] = s;
		args[1] = (unsigned)(unsigned long)(a32 + 256);
		args[2] = unix_addr(sa, "/var/run/docker.sock");
		report(t, ia32(102, 3, (long)a32, 0, 0, 0));
		close(s);
	} else if (!strcmp(t, "ia32-socketcall-unmapped")) {
		/* The argument block unmapped by another thread while the connect
		 * waits in the kernel (a full backlog): after the kernel read it,
		 * before breakwater can at exit. */
		struct sockaddr_un sa;
		unsigned *args;
		int l = socket(AF_UNIX, SOCK_STREAM, 0), c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
		socklen_t len = unix_addr(&sa, "/tmp/bwbacklog.sock");
		char *a32 = unfaulted_pair(&args);
		pthread_t th;
		unlink("/tmp/bwbacklog.sock");
		if (!a32 || bind(l, (struct sockaddr *)&sa, len) || listen(l, 0) || connect(c1, (struct sockaddr *)&sa, len))
			return 1;
		memcpy((char *)args + 256, &sa, len);
		args[0] = c2;
		args[1] = (unsigned)(unsigned long)(a32 + 256);
		args[2] = len;
		unmap_then_accept.page = a32;
		unmap_then_accept.listener = l;
		pthread_create(&th, 0, unmap_then_accept_fn, 0);
		report(t, ia32(102, 3, (long)a32, 0, 0, 0));
		pthread_join(th, 0);
		unlink("/tmp/bwbacklog.sock");
	} else if (!strcmp(t, "ia32-sendto-fastopen")) {
		/* socketcall(SYS_SENDTO, {fd, buf, len, MSG_FASTOPEN, addr, addrlen}). */
		char *p = low_page();
		struct sockaddr_in *sin = (struct sockaddr_in *)(p + 256);
		unsigned *args = (unsigned *)p;
		int s = socket(AF_INET, SOCK_STREAM, 0);
		sin->sin_family = AF_INET;
		sin->sin_port = htons(atoi(a));
		sin->sin_addr.s_addr = htonl(0x7f000001);
		strcpy(p + 512, "GET /");
		args[0] = s;
		args[1] = (unsigned)(unsigned long)(p + 512);
		args[2] = 5;
		args[3] = MSG_FASTOPEN;
		args[4] = (unsigned)(unsigned long)sin;
		args[5] = sizeof(*sin);
		report(t, ia32(102, 11, (long)args, 0, 0, 0));
		close(s);
	} else if (!strcmp(t, "ia32-benign")) {
		/* ia32 rt_sigprocmask is 175, x86_64's init_module. */
		char *p = low_page();
		memset(p, 0, 16);
		report(t, ia32(175, SIG_BLOCK, (long)p, (long)p + 8, 8, 0));
	} else if (!strcmp(t, "clone3-user")) {
		struct {
			unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
		} args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
		r = syscall(SYS_clone3, &args, sizeof(args));
		if (r == 0)
			_exit(0);
		report(t, r);
		if (r > 0)
			waitpid(r, 0, 0);
	} else if (!strcmp(t, "nosys")) {
		report(t, syscall(1000)); /* no such syscall: it enters and fails with ENOSYS */
	} else if (!strcmp(t, "epoll-file")) {
		struct epoll_event ev = {.events = EPOLLIN};
		int ep = epoll_create1(0), fd = open("/tmp/bwepoll", O_CREAT | O_RDWR, 0600);
		report(t, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)); /* EPERM: a regular file */
		close(fd);
		close(ep);
		unlink("/tmp/bwepoll");
	} else if (!strcmp(t, "relative-core")) {
		if (chdir("/proc/sys/kernel"))
			return 1;
		open_report(t, open("core_pattern", O_WRONLY));
	} else if (!strcmp(t, "dirfd-core")) {
		int dir = open("/proc/sys/kernel", O_RDONLY | O_DIRECTORY);
		open_report(t, openat(dir, "core_pattern", O_WRONLY));
		close(dir);
	} else if (!strcmp(t, "dotted-core")) {
		open_report(t, open("/proc/./sys//kernel/../kernel/./core_pattern", O_WRONLY));
	} else if (!strcmp(t, "padded-core")) {
		/* Past any fixed buffer: /tmp/.. repeated, then the path. */
		path[0] = 0;
		while (strlen(path) < 3000)
			strcat(path, "/tmp/..");
		strcat(path, CORE);
		open_report(t, open(path, O_WRONLY));
	} else if (!strcmp(t, "symlink-core")) {
		unlink("/tmp/cp");
		if (symlink(CORE, "/tmp/cp"))
			return 1;
		open_report(t, open("/tmp/cp", O_WRONLY));
		unlink("/tmp/cp");
	} else if (!strcmp(t, "creat-core")) {
		/* creat truncates: only where the write-open itself is refused. */
		r = open(CORE, O_WRONLY);
		if (r >= 0) {
			close(r);
			puts("creat-core: skipped, core_pattern is writable here");
			return 3;
		}
		open_report(t, creat(CORE, 0600));
	} else if (!strcmp(t, "long-release")) {
		/* A v1 hierarchy under a 150-character directory, its release_agent
		 * opened for writing by absolute path, nothing written. */
		char dir[256] = "/tmp/";
		memset(dir + 5, 'd', 150);
		dir[155] = 0;
		mkdir(dir, 0700);
		if (mount("cgroup", dir, "cgroup", 0, "none,name=breakwaterlong")) {
			report("long-release mount", -1);
			return 1;
		}
		snprintf(path, sizeof(path), "%s/release_agent", dir);
		open_report(t, open(path, O_WRONLY));
		umount(dir);
		rmdir(dir);
	} else if (!strcmp(t, "connect")) {
		/* connect PATH: a Unix socket by path, the name given by length. */
		struct sockaddr_un sa;
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		report(t, connect(s, (struct sockaddr *)&sa, unix_addr(&sa, a)));
		close(s);
	} else if (!strcmp(t, "uring-open-core")) {
		open_report(t, uring_openat(CORE, O_WRONLY));
	} else if (!strcmp(t, "uring-skip")) {
		/* uring-skip PATH: an io_uring open for writing that posts no
		 * completion when it succeeds (IOSQE_CQE_SKIP_SUCCESS). */
		struct ring r;
		struct io_uring_sqe sqe = {.opcode = IORING_OP_OPENAT, .fd = AT_FDCWD, .addr = (unsigned long)a,
					   .open_flags = O_WRONLY, .flags = IOSQE_CQE_SKIP_SUCCESS, .user_data = 1};
		long res;
		if (ring_setup(&r))
			return 1;
		ring_push(&r, &sqe);
		syscall(SYS_io_uring_enter, r.fd, 1, 0, 0, 0, 0);
		usleep(200 * 1000);
		res = ring_result(&r, 1);
		if (res == -ENODATA)
			printf("%s: allowed (no completion)\n", t);
		else
			report(t, res < 0 ? (errno = -res, -1) : res);
	} else if (!strcmp(t, "uring-flood")) {
		/* uring-flood PATH N: an io_uring open of PATH for writing held
		 * back behind a linked read of an empty pipe; then N opens of a
		 * FIFO that wait for a writer, all in flight at once; then the
		 * pipe and the FIFO are written and everything completes. */
		struct ring r;
		int n = argc > 3 ? atoi(argv[3]) : 0, pp[2], w;
		char buf[1];
		struct io_uring_sqe rd = {.opcode = IORING_OP_READ, .addr = (unsigned long)buf, .len = 1,
					  .flags = IOSQE_IO_LINK, .user_data = 100};
		struct io_uring_sqe op = {.opcode = IORING_OP_OPENAT, .fd = AT_FDCWD, .addr = (unsigned long)a,
					  .open_flags = O_WRONLY, .user_data = 1};
		struct io_uring_sqe fifo = {.opcode = IORING_OP_OPENAT, .fd = AT_FDCWD, .addr = (unsigned long)"/tmp/bwfifo",
					    .open_flags = O_RDONLY, .user_data = 2};
		if (pipe(pp) || ring_setup_n(&r, 1024) || (mkfifo("/tmp/bwfifo", 0600) && errno != EEXIST))
			return 1;
		rd.fd = pp[0];
		ring_push(&r, &rd);
		ring_push(&r, &op);
		for (int i = 0; i < n; i++)
			ring_push(&r, &fifo);
		syscall(SYS_io_uring_enter, r.fd, n + 2, 0, 0, 0, 0);
		usleep(300 * 1000);
		if (write(pp[1], "x", 1) != 1)
			return 1;
		w = open("/tmp/bwfifo", O_WRONLY | O_NONBLOCK);
		usleep(500 * 1000);
		report(t, (errno = -ring_result(&r, 1), errno ? -1 : 0));
		close(w);
		unlink("/tmp/bwfifo");
	} else if (!strcmp(t, "uring-connect")) {
		struct sockaddr_un sa;
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		report(t, uring_connect(s, (struct sockaddr *)&sa, unix_addr(&sa, a)));
		close(s);
	} else if (!strcmp(t, "mknod-other")) {
		/* mknod-other MAJ:MIN: a host block device under another name. */
		unsigned maj, min;
		if (sscanf(a, "%u:%u", &maj, &min) != 2)
			return 2;
		unlink("/tmp/disk");
		report("mknod", mknod("/tmp/disk", S_IFBLK | 0600, makedev(maj, min)));
		open_report(t, open("/tmp/disk", O_RDONLY));
		unlink("/tmp/disk");
	} else if (!strcmp(t, "userns-mount")) {
		/* A mount inside a user namespace of its own: a namespaced check. */
		pid_t child = fork();
		if (child == 0) {
			if (unshare(CLONE_NEWUSER | CLONE_NEWNS))
				_exit(1);
			mkdir("/tmp/bwns", 0700);
			_exit(mount("none", "/tmp/bwns", "tmpfs", 0, "") ? 2 : 0);
		}
		int st = 0;
		waitpid(child, &st, 0);
		printf("userns-mount: child exit %d\n", WEXITSTATUS(st));
	} else if (!strcmp(t, "proc-mem")) {
		/* proc-mem other|self: open a task's memory file for writing (a
		 * child of ours, which the same user may trace; or our own). */
		char path[64] = "/proc/self/mem";
		pid_t child = 0;
		if (!strcmp(a, "other")) {
			child = fork();
			if (child == 0) {
				pause();
				_exit(0);
			}
			snprintf(path, sizeof(path), "/proc/%d/mem", child);
		}
		open_report(t, open(path, O_RDWR));
		if (child > 0) {
			kill(child, SIGKILL);
			waitpid(child, 0, 0);
		}
	} else if (!strcmp(t, "traceme-setregs")) {
		/* The child asks to be traced; the parent, never attaching, then
		 * rewrites its registers. */
		pid_t child = stopped_tracee();
		struct user_regs_struct regs;
#if defined(__x86_64__) || defined(__i386__)
		ptrace(PTRACE_GETREGS, child, 0, &regs);
		report(t, ptrace(PTRACE_SETREGS, child, 0, &regs));
#else
		struct iovec iov = {&regs, sizeof(regs)};
		ptrace(PTRACE_GETREGSET, child, NT_PRSTATUS, &iov);
		report(t, ptrace(PTRACE_SETREGSET, child, NT_PRSTATUS, &iov));
#endif
		kill(child, SIGKILL);
		waitpid(child, 0, 0);
	} else if (!strcmp(t, "later")) {
		/* later SECONDS TECHNIQUE...: wait, then attempt (meanwhile the
		 * test moves this process about). */
		sleep(atoi(a));
		return attempt(argc - 2, argv + 2);
	} else if (!strcmp(t, "traceme-kill")) {
		/* The child asks to be traced; the parent kills it through ptrace. */
		pid_t child = stopped_tracee();
		report(t, ptrace(PTRACE_KILL, child, 0, 0));
		waitpid(child, 0, 0);
	} else if (!strcmp(t, "above-table")) {
		/* A number past every table whose low bits are mount's. */
		report(t, syscall(1024 + SYS_mount, "none", "/tmp", "tmpfs", 0, ""));
	} else if (!strcmp(t, "connect-widelen")) {
		/* connect PATH with junk in the upper half of addrlen's register,
		 * which the kernel reads as an int. */
		struct sockaddr_un sa;
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		long len = unix_addr(&sa, a) | (long)0xffffffff00000000UL;
		report(t, syscall(SYS_connect, s, &sa, len));
		close(s);
	} else if (!strcmp(t, "fd-reopen")) {
		/* fd-reopen PATH proc|dev: hold PATH as an O_PATH descriptor and
		 * open it for writing again through its magic link. */
		char link[64];
		int fd = open(a, O_PATH);
		if (fd < 0) {
			report("O_PATH open", -1);
			return 1;
		}
		snprintf(link, sizeof(link), argc > 3 && !strcmp(argv[3], "dev") ? "/dev/fd/%d" : "/proc/self/fd/%d", fd);
		open_report(t, open(link, O_WRONLY));
	} else if (!strcmp(t, "cwd-link")) {
		/* The working directory's magic link. */
		if (chdir("/proc/sys/kernel"))
			return 1;
		open_report(t, open("/proc/self/cwd/core_pattern", O_WRONLY));
	} else if (!strcmp(t, "in-root")) {
		/* openat2 with RESOLVE_IN_ROOT: "/" is the dirfd, here /proc. */
		struct open_how how = {.flags = O_WRONLY, .resolve = RESOLVE_IN_ROOT};
		int dir = open("/proc", O_PATH | O_DIRECTORY);
		open_report(t, syscall(SYS_openat2, dir, "/sys/kernel/core_pattern", &how, sizeof(how)));
	} else if (!strcmp(t, "openat-write")) {
		/* openat-write DIR PATH: open PATH relative to DIR for writing. */
		int dir = open(a, O_PATH | O_DIRECTORY);
		open_report(t, openat(dir, argc > 3 ? argv[3] : "", O_WRONLY));
	} else if (!strcmp(t, "high-bits")) {
		/* high-bits mount|open PATH: the call's number with junk above
		 * bit 31, which the kernel drops (it runs the number as an int). */
		long hi = 1L << 32;
		if (!strcmp(a, "mount")) {
			long r;
			mkdir("/tmp/bwmnt", 0700);
			r = syscall(SYS_mount | hi, "none", "/tmp/bwmnt", "tmpfs", 0, "");
			report(t, r);
			if (r == 0)
				umount("/tmp/bwmnt");
		} else {
			open_report(t, syscall(SYS_openat | hi, AT_FDCWD, argc > 3 ? argv[3] : CORE, O_WRONLY));
		}
	} else if (!strcmp(t, "open-write")) {
		/* open-write PATH: open for writing and close, nothing written. */
		open_report(t, open(a, O_WRONLY));
	} else if (!strcmp(t, "binfmt-register")) {
		/* binfmt_misc's register opened for writing, nothing written. */
		mkdir("/tmp/bwbinfmt", 0700);
		if (mount("binfmt_misc", "/tmp/bwbinfmt", "binfmt_misc", 0, "")) {
			report("binfmt_misc mount", -1);
			return 1;
		}
		open_report(t, open("/tmp/bwbinfmt/register", O_WRONLY));
		umount("/tmp/bwbinfmt");
	} else if (!strcmp(t, "tcp")) {
		/* tcp PORT: a TCP connect to the loopback. */
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(atoi(a)), .sin_addr.s_addr = htonl(0x7f000001)};
		int s = socket(AF_INET, SOCK_STREAM, 0);
		report(t, connect(s, (struct sockaddr *)&sin, sizeof(sin)));
		close(s);
	} else if (!strcmp(t, "tcp-fastopen")) {
		/* tcp-fastopen PORT sendto|sendmsg|sendmmsg: a TCP fast open to
		 * the loopback, which connects as it sends. */
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(atoi(a)), .sin_addr.s_addr = htonl(0x7f000001)};
		const char *how = argc > 3 ? argv[3] : "sendto";
		char buf[] = "GET /";
		struct iovec iov = {buf, 5};
		struct mmsghdr mm = {.msg_hdr = {.msg_name = &sin, .msg_namelen = sizeof(sin), .msg_iov = &iov, .msg_iovlen = 1}};
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (!strcmp(how, "sendmsg"))
			report(t, sendmsg(s, &mm.msg_hdr, MSG_FASTOPEN));
		else if (!strcmp(how, "sendmmsg"))
			report(t, sendmmsg(s, &mm, 1, MSG_FASTOPEN));
		else
			report(t, sendto(s, buf, 5, MSG_FASTOPEN, (struct sockaddr *)&sin, sizeof(sin)));
		close(s);
	} else if (!strcmp(t, "listen-abstract")) {
		/* listen-abstract NAME SECONDS: a listener on an abstract socket. */
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int l = socket(AF_UNIX, SOCK_STREAM, 0);
		strncpy(sa.sun_path + 1, a, sizeof(sa.sun_path) - 2);
		if (bind(l, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a)) || listen(l, 8)) {
			perror("listen-abstract");
			return 1;
		}
		puts("listening");
		fflush(stdout);
		sleep(argc > 3 ? atoi(argv[3]) : 30);
		close(l);
	} else if (!strcmp(t, "listen-unix")) {
		/* listen-unix PATH SECONDS: a listener on a Unix socket path, as a
		 * runtime's API socket (the VM matrix has no runtime). */
		struct sockaddr_un sa;
		int l = socket(AF_UNIX, SOCK_STREAM, 0);
		unlink(a);
		if (bind(l, (struct sockaddr *)&sa, unix_addr(&sa, a)) || listen(l, 8)) {
			perror("listen-unix");
			return 1;
		}
		puts("listening");
		fflush(stdout);
		sleep(argc > 3 ? atoi(argv[3]) : 30);
		close(l);
		unlink(a);
	} else if (!strcmp(t, "connect-abstract")) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		strncpy(sa.sun_path + 1, a, sizeof(sa.sun_path) - 2);
		report(t, connect(s, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a)));
		close(s);
	} else if (!strcmp(t, "userns-exec")) {
		/* A child in a user namespace of its own executes something: it
		 * holds every capability there, none on the host. */
		pid_t child = fork();
		if (child == 0) {
			if (unshare(CLONE_NEWUSER))
				_exit(1);
			execl("/bin/true", "true", (char *)0);
			_exit(2);
		}
		int st = 0;
		waitpid(child, &st, 0);
		printf("userns-exec: child exit %d\n", WEXITSTATUS(st));
	} else if (!strcmp(t, "benign")) {
		/* What ordinary programs do near the classified objects. */
		struct sockaddr_un sa;
		char buf[64];
		int l = socket(AF_UNIX, SOCK_STREAM, 0), s = socket(AF_UNIX, SOCK_STREAM, 0), fd;
		fd = open(CORE, O_RDONLY);
		if (fd >= 0) {
			read(fd, buf, sizeof(buf));
			close(fd);
		}
		close(open("/dev/null", O_WRONLY));
		close(open("/dev/zero", O_RDONLY));
		unlink("/tmp/app.sock");
		socklen_t len = unix_addr(&sa, "/tmp/app.sock");
		bind(l, (struct sockaddr *)&sa, len);
		listen(l, 1);
		connect(s, (struct sockaddr *)&sa, len);
		close(s);
		close(l);
		unlink("/tmp/app.sock");
		fd = uring_openat("/etc/passwd", O_RDONLY);
		if (fd >= 0)
			close(fd);
		puts("benign: done");
	} else if (!strcmp(t, "runtime-init")) {
		/* runtime-init stay|join TECHNIQUE...: a runtime's init as runc 1.1
		 * runs it, on the host: "ready", then wait on stdin while the test
		 * moves it into a container's cgroup, and re-execute from a sealed
		 * memfd copy meanwhile. stay: as runc run, still in the runtime's
		 * mount namespace, then enter a new one and execute TECHNIQUE there.
		 * join: as runc exec, in a mount namespace of its own before the
		 * move, and the memfd copy runs TECHNIQUE. */
		int join = !strcmp(a, "join");
		char go[8];
		if (join && unshare(CLONE_NEWNS))
			return report("unshare", -1), 1;
		puts("ready");
		fflush(stdout);
		if (read(0, go, sizeof(go)) <= 0)
			return 1;
		int self = open("/proc/self/exe", O_RDONLY), copy = memfd_create("runc_cloned", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		struct stat st;
		if (self < 0 || copy < 0 || fstat(self, &st) || sendfile(copy, self, 0, st.st_size) != st.st_size)
			return report("memfd copy", -1), 1;
		fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
		if (!join)
			argv[2] = "runtime-stage2"; /* argv + 1: runtime-init runtime-stage2 TECHNIQUE... */
		fexecve(copy, argv + (join ? 2 : 1), environ); /* join: argv[2] is argv[0] */
		return report("fexecve", -1), 1;
	} else if (!strcmp(t, "runtime-stage2")) {
		/* The runtime's own work, then the container's first execution. */
		chroot("/");
		if (unshare(CLONE_NEWNS))
			return report("unshare", -1), 1;
		execv("/proc/self/exe", argv + 1);
		return report("execv", -1), 1;
	} else {
		fprintf(stderr, "attempt: unknown technique %s\n", t);
		return 2;
	}
	return 0;
}
