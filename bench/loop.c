// SPDX-License-Identifier: Apache-2.0
//go:build ignore

/*
 * loop runs n rounds of one workload and prints the mean nanoseconds per
 * round:
 *   getppid  an ordinary syscall no hook classifies
 *   open     open and close of an ordinary file
 *   setuid   setuid to the current uid: a capability check (CAP_SETUID) each time
 *   fork     fork, exit and wait: the task-tracking hooks
 *
 *   loop WORKLOAD N
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *w = argc > 1 ? argv[1] : "getppid";
	long n = argc > 2 ? atol(argv[2]) : 1000000;
	struct timespec a, b;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/bw-bench-%d", getpid());
	fd = open(path, O_CREAT | O_RDWR, 0600);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (!strcmp(w, "getppid")) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
	} else if (!strcmp(w, "open")) {
		for (long i = 0; i < n; i++)
			close(open(path, O_RDONLY));
	} else if (!strcmp(w, "setuid")) {
		uid_t uid = getuid();
		for (long i = 0; i < n; i++)
			syscall(SYS_setuid, uid);
	} else if (!strcmp(w, "fork")) {
		for (long i = 0; i < n; i++) {
			pid_t p = fork();
			if (p == 0)
				_exit(0);
			waitpid(p, 0, 0);
		}
	} else {
		fprintf(stderr, "loop: unknown workload %s\n", w);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	unlink(path);
	printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return 0;
}
