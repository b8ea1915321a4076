//go:build !amd64

package ia32

// getpid32 has no ia32 syscall to make outside amd64; AArch32 compat is
// reported by the kernel's configuration instead.
func getpid32() int64 { return -1 }
