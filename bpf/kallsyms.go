package bpf

import (
	"bufio"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// noauditFunction reports whether a kernel function checks capabilities
// without auditing the check: its checks are the kernel asking for itself.
// The memory-charge check is found by its LSM hook's wrapper too, since
// the kernel may reach cap_capable from there without a frame of
// cap_vm_enough_memory.
func noauditFunction(name string) bool {
	if strings.HasPrefix(name, "__pfx_") {
		return false // the padding before a function
	}
	name = strings.TrimSuffix(name, ".cold")
	return strings.HasSuffix(name, "capable_noaudit") || strings.HasSuffix(name, "capability_noaudit") ||
		name == "cap_vm_enough_memory" || name == "security_vm_enough_memory_mm" || name == "__vm_enough_memory"
}

// NoauditRanges reads where those functions sit from /proc/kallsyms. It
// needs CAP_SYSLOG to see real addresses; without it, it returns none.
func NoauditRanges() []AddrRange {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil
	}
	defer f.Close()
	return noauditRanges(f)
}

func noauditRanges(r io.Reader) []AddrRange {
	type sym struct {
		addr uint64
		name string
	}
	var syms []sym
	s := bufio.NewScanner(r)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 3 || (fields[1] != "t" && fields[1] != "T") {
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil || addr == 0 {
			continue // zero addresses: kallsyms hidden from this process
		}
		syms = append(syms, sym{addr, fields[2]})
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	var out []AddrRange
	for i, sy := range syms {
		if !noauditFunction(sy.name) || i+1 >= len(syms) {
			continue
		}
		out = append(out, AddrRange{Start: sy.addr, End: syms[i+1].addr})
	}
	return out
}
