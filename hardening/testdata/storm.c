// SPDX-License-Identifier: Apache-2.0
/*
 * storm makes n unshare(CLONE_NEWUSER) calls split over p processes, as
 * fast as it can, and prints how many failed with EPERM (Docker's default
 * seccomp profile denies them) and the rate achieved:
 *
 *   storm <n> <p>
 *   calls=<n> eperm=<e> other=<o> seconds=<s> rate=<calls per second>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int p = argc > 2 ? atoi(argv[2]) : 1;
	/* Per-process EPERM and other-result counts, shared with the parent. */
	long *res = mmap(0, sizeof(long) * 2 * p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double t0;

	if (res == MAP_FAILED || p < 1)
		return 2;
	t0 = now();
	for (int i = 0; i < p; i++) {
		if (fork() == 0) {
			long mine = n / p + (i < n % p), eperm = 0, other = 0;
			for (long j = 0; j < mine; j++) {
				/* The raw syscall: no libc wrapper work between calls. */
				if (syscall(SYS_unshare, CLONE_NEWUSER) < 0 && errno == EPERM)
					eperm++;
				else
					other++;
			}
			res[2 * i] = eperm;
			res[2 * i + 1] = other;
			_exit(0);
		}
	}
	while (wait(0) > 0)
		;
	double secs = now() - t0;
	long eperm = 0, other = 0;
	for (int i = 0; i < p; i++) {
		eperm += res[2 * i];
		other += res[2 * i + 1];
	}
	printf("calls=%ld eperm=%ld other=%ld seconds=%.3f rate=%.0f\n", n, eperm, other, secs, n / secs);
	return other != 0;
}
