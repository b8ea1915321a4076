// Package syscalls names syscall numbers of the architecture breakwater
// runs on. The set of names is closed: it is the kernel's own table.
package syscalls

//go:generate go run mktable.go

var numbers = func() map[string]uint32 {
	m := make(map[string]uint32, len(amd64Names))
	for n, name := range amd64Names {
		m[name] = n
	}
	return m
}()

// Name returns the syscall's name, or "unknown" for a number the table lacks.
func Name(nr uint32) string {
	if name, ok := amd64Names[nr]; ok {
		return name
	}
	return "unknown"
}

// Number returns the number of a named syscall on this architecture.
func Number(name string) (uint32, bool) {
	n, ok := numbers[name]
	return n, ok
}
