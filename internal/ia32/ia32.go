// Package ia32 asks whether this kernel runs 32-bit x86 syscalls (ia32
// emulation): a 64-bit process can make them with int $0x80, and breakwater
// counts them with the i386 syscall table.
package ia32

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Enabled reports whether ia32 syscalls work here, by making one (getpid
// through int $0x80) in a child process, since a kernel without ia32
// emulation kills the caller. self is the breakwater binary and arg the
// hidden command that runs Probe.
func Enabled(self, arg string) (bool, error) {
	out, err := exec.Command(self, arg).Output()
	if err != nil {
		if _, ok := err.(*exec.ExitError); ok {
			return false, nil
		}
		return false, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	return err == nil && pid > 0, nil
}

// Probe makes the ia32 getpid and prints what it returned. It does not
// return if the kernel refuses ia32 syscalls.
func Probe() {
	os.Stdout.WriteString(strconv.FormatInt(getpid32(), 10) + "\n")
}
