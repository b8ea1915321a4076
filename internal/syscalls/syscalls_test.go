package syscalls

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNativeTableAgreesWithXSys(t *testing.T) {
	cases := map[string]uint32{
		"getppid": unix.SYS_GETPPID, "unshare": unix.SYS_UNSHARE, "mount": unix.SYS_MOUNT,
		"openat": unix.SYS_OPENAT, "clone3": unix.SYS_CLONE3, "finit_module": unix.SYS_FINIT_MODULE,
		"open_tree": unix.SYS_OPEN_TREE, "process_vm_writev": unix.SYS_PROCESS_VM_WRITEV,
		"mseal": unix.SYS_MSEAL, // above 450: the table is not a 6.1 header's
	}
	for name, want := range cases {
		got, ok := Number(Native, name)
		if !ok || got != want {
			t.Errorf("Number(Native, %q) = %d, %v; want %d", name, got, ok, want)
		}
		if Name(Native, want) != name {
			t.Errorf("Name(Native, %d) = %q; want %q", want, Name(Native, want), name)
		}
	}
	if Name(Native, 100000) != "unknown" || Name(ABI(7), 1) != "unknown" {
		t.Error("numbers and ABIs outside the tables must be unknown")
	}
	for _, abi := range ABIs() {
		for _, name := range Names(abi) {
			if nr, _ := Number(abi, name); nr >= Slots {
				t.Errorf("%s %s = %d, beyond the BPF tables' %d slots", abi, name, nr, Slots)
			}
		}
	}
}

// TestCompatNumbersAreNotNative is the reason ABIs exist: the same number
// is another call in another ABI, so reading an ia32 call with the x86_64
// table would call rt_sigprocmask init_module.
func TestCompatNumbersAreNotNative(t *testing.T) {
	type call struct {
		abi  ABI
		nr   uint32
		name string
	}
	var cases []call
	switch runtime.GOARCH {
	case "amd64":
		cases = []call{
			{Compat, 175, "rt_sigprocmask"}, {Native, 175, "init_module"},
			{Compat, 5, "open"}, {Compat, 21, "mount"}, {Compat, 310, "unshare"},
			{Compat, 102, "socketcall"}, {Compat, 362, "connect"}, {Compat, 26, "ptrace"},
			{Compat, 128, "init_module"}, {Compat, 357, "bpf"}, {Compat, 110, "iopl"},
			{X32, 521, "ptrace"}, {X32, 257, "openat"}, {X32, 540, "process_vm_writev"},
			{X32, 165, "mount"}, {X32, 42, "connect"},
		}
		if _, ok := Number(X32, "ptrace"); !ok {
			t.Error("x32 has ptrace")
		}
		if Name(X32, 101) != "unknown" {
			t.Errorf("x32 101 = %q: x32 processes cannot make the x86_64 ptrace", Name(X32, 101))
		}
	case "arm64":
		cases = []call{
			{Native, 40, "mount"}, {Native, 56, "openat"}, {Native, 97, "unshare"},
			{Compat, 21, "mount"}, {Compat, 5, "open"}, {Compat, 283, "connect"},
		}
	}
	for _, c := range cases {
		if got := Name(c.abi, c.nr); got != c.name {
			t.Errorf("%s %d = %q, want %q", c.abi, c.nr, got, c.name)
		}
		if nr, ok := Number(c.abi, c.name); !ok || (nr != c.nr && c.name != "connect") {
			t.Errorf("Number(%s, %q) = %d, %v; want %d", c.abi, c.name, nr, ok, c.nr)
		}
	}
}
