// Package syscalls names syscall numbers for every syscall ABI of the
// architecture breakwater runs on: x86_64, i386 (ia32 emulation) and x32
// on amd64; arm64 and arm (AArch32 compat) on arm64. The set of names is
// closed: it is the kernel's own tables.
package syscalls

//go:generate go run mktable.go

// ABI is a syscall ABI, numbered as the BPF programs number them (enum abi).
type ABI uint8

const (
	Native ABI = 0 // x86_64, arm64
	Compat ABI = 1 // i386 on amd64, arm on arm64
	X32    ABI = 2 // x32 on amd64; none on arm64
)

// Slots is the size of the BPF programs' per-ABI syscall tables
// (SYSCALL_SLOTS): every number of every table is below it.
const Slots = 1024

var numbers = func() []map[string]uint32 {
	out := make([]map[string]uint32, len(tables))
	for abi, t := range tables {
		out[abi] = make(map[string]uint32, len(t))
		for nr, name := range t {
			out[abi][name] = nr
		}
	}
	return out
}()

// ABIs returns this architecture's syscall ABIs.
func ABIs() []ABI {
	out := make([]ABI, len(tables))
	for i := range tables {
		out[i] = ABI(i)
	}
	return out
}

// String names the ABI as the kernel's syscall tables do ("x86_64", "i386", ...).
func (a ABI) String() string {
	if int(a) < len(abiNames) {
		return abiNames[a]
	}
	return "unknown"
}

// Other is the slot the BPF programs give every number beyond the tables
// (OTHER_SLOT): no syscall of any ABI has it. Refused calls past a
// container's denied budget count under its name too.
const Other = Slots - 1

// Name returns a syscall's name, "other" for Other, or "unknown" for a
// number the ABI's table lacks.
func Name(abi ABI, nr uint32) string {
	if nr == Other {
		return "other"
	}
	if int(abi) < len(tables) {
		if name, ok := tables[abi][nr]; ok {
			return name
		}
	}
	return "unknown"
}

// Number returns the number of a named syscall in an ABI.
func Number(abi ABI, name string) (uint32, bool) {
	if int(abi) >= len(numbers) {
		return 0, false
	}
	n, ok := numbers[abi][name]
	return n, ok
}

// Names returns every syscall name of an ABI.
func Names(abi ABI) []string {
	if int(abi) >= len(tables) {
		return nil
	}
	out := make([]string, 0, len(tables[abi]))
	for _, n := range tables[abi] {
		out = append(out, n)
	}
	return out
}
