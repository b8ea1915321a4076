package security

import (
	"runtime"
	"testing"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/internal/syscalls"
)

// TestDescsCoverEveryABI: every syscall of the table is classified in each
// ABI that has it, with the same meaning; and a number means its own ABI's
// call (ia32 175 is rt_sigprocmask, not x86_64's init_module).
func TestDescsCoverEveryABI(t *testing.T) {
	descs, err := Descs()
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range Table {
		found := false
		for _, abi := range syscalls.ABIs() {
			nr, ok := syscalls.Number(abi, name)
			if !ok {
				continue
			}
			found = true
			d := descs[abi][nr]
			if bpf.SyscallClass(d.Class) != r.class {
				t.Errorf("%s %s (%d): class %d, want %d", abi, name, nr, d.Class, r.class)
			}
			if r.technique != "" && bpf.TechniqueNames[d.Technique] != r.technique {
				t.Errorf("%s %s: technique %q, want %q", abi, name, bpf.TechniqueNames[d.Technique], r.technique)
			}
		}
		if !found && name != "socketcall" && name != "umount" && name != "open" && name != "creat" && name != "mknod" && name != "iopl" && name != "ioperm" {
			t.Errorf("%s is in no ABI of %s", name, runtime.GOARCH)
		}
	}
	for _, abi := range syscalls.ABIs() {
		for nr, d := range descs[abi] {
			if name := syscalls.Name(abi, nr); d.Class != 0 && Table[name].class != bpf.SyscallClass(d.Class) {
				t.Errorf("%s %d is %s, classified %d", abi, nr, name, d.Class)
			}
		}
	}
	if runtime.GOARCH == "amd64" {
		if d := descs[syscalls.Compat][175]; d.Class != 0 {
			t.Errorf("ia32 rt_sigprocmask (175) is classified %+v", d)
		}
		if d := descs[syscalls.Compat][102]; bpf.SyscallClass(d.Class) != bpf.ClassSocketcall {
			t.Errorf("ia32 socketcall (102) is classified %+v", d)
		}
		if d := descs[syscalls.Native][175]; bpf.TechniqueNames[d.Technique] != "kernel_module" {
			t.Errorf("x86_64 init_module (175) is classified %+v", d)
		}
	}
	if d := descs[syscalls.Native][mustNumber(t, "mmap")]; d.Pad[0]&bpf.DescVMAccounting == 0 || d.Capability != bpf.NoCapability {
		t.Errorf("mmap is not marked as charging memory: %+v", d)
	}
}

func mustNumber(t *testing.T, name string) uint32 {
	nr, ok := syscalls.Number(syscalls.Native, name)
	if !ok {
		t.Fatalf("no native %s", name)
	}
	return nr
}

func TestCapabilityNames(t *testing.T) {
	for i, want := range map[int]string{0: "CAP_CHOWN", 21: "CAP_SYS_ADMIN", 38: "CAP_PERFMON", 39: "CAP_BPF", 40: "CAP_CHECKPOINT_RESTORE", 63: "cap_63"} {
		if got := capabilityName(i); got != want {
			t.Errorf("capability %d = %s, want %s", i, got, want)
		}
	}
}
