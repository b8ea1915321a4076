package bpf

import (
	"strings"
	"testing"
)

func TestNoauditRanges(t *testing.T) {
	in := `ffffffff8120790e t ns_capable_noaudit.cold
ffffffff81207950 t something_else
ffffffff81366270 T __pfx_ns_capable_noaudit
ffffffff81366280 T ns_capable_noaudit
ffffffff813662c0 T ns_capable_setid
ffffffff81a80b10 T cap_vm_enough_memory
ffffffff81a80b80 T cap_mmap_addr
ffffffff81a85b20 T __pfx_security_vm_enough_memory_mm
ffffffff81a85b30 T security_vm_enough_memory_mm
ffffffff81a85bb0 T __pfx_security_bprm_creds_for_exec
ffffffff81a8fba0 T avc_has_perm_noaudit
ffffffff81a8fc00 T avc_has_perm
0000000000000000 T hidden_capable_noaudit
`
	got := noauditRanges(strings.NewReader(in))
	want := []AddrRange{{Start: 0xffffffff8120790e, End: 0xffffffff81207950}, {Start: 0xffffffff81366280, End: 0xffffffff813662c0},
		{Start: 0xffffffff81a80b10, End: 0xffffffff81a80b80}, {Start: 0xffffffff81a85b30, End: 0xffffffff81a85bb0}}
	if len(got) != len(want) {
		t.Fatalf("ranges = %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("range %d = %x, want %x", i, got[i], want[i])
		}
	}
	if n := len(NoauditRanges()); n > noauditRangeCount {
		t.Errorf("this kernel has %d noaudit functions, more than the programs' %d slots", n, noauditRangeCount)
	}
}
