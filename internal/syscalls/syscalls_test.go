package syscalls

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestTableAgreesWithXSys(t *testing.T) {
	cases := map[string]uint32{
		"getppid": unix.SYS_GETPPID, "unshare": unix.SYS_UNSHARE, "mount": unix.SYS_MOUNT,
		"openat": unix.SYS_OPENAT, "clone3": unix.SYS_CLONE3, "finit_module": unix.SYS_FINIT_MODULE,
		"open_tree": unix.SYS_OPEN_TREE, "process_vm_writev": unix.SYS_PROCESS_VM_WRITEV,
	}
	for name, want := range cases {
		got, ok := Number(name)
		if !ok || got != want {
			t.Errorf("Number(%q) = %d, %v; want %d", name, got, ok, want)
		}
		if Name(want) != name {
			t.Errorf("Name(%d) = %q; want %q", want, Name(want), name)
		}
	}
	if Name(100000) != "unknown" {
		t.Error("out-of-table number must be unknown")
	}
}
