// Package escape defines a classified escape attempt as it leaves the BPF
// ring buffer, the unit both the log and the Alertmanager push work on.
package escape

import (
	"time"

	"github.com/breakwater/breakwater/exporter/identity"
)

// Result values of an attempt, as in the breakwater_escape_attempts_total
// "result" label.
const (
	Blocked = "blocked"
	Allowed = "allowed"
)

// Event is one escape attempt by a container process.
type Event struct {
	Time      time.Time
	Identity  identity.Identity
	Technique string // one of the contract's technique values, e.g. "mount"
	Result    string // Blocked or Allowed
	Syscall   string // e.g. "mount", "openat"
	Errno     string // e.g. "EPERM"; empty when the call succeeded
	Comm      string // the calling task's comm
	PID       uint32 // thread group id, as seen from the host
	Detail    string // the path or socket address involved, when there is one
	Object    string // what the kernel found it reached, e.g. "container runtime API"
	// Repeats are the same attempts (container, syscall, result) the kernel
	// folded into this event since the previous one: it stands for
	// 1+Repeats attempts.
	Repeats uint64
}

// Sink receives escape events. Push must not block the caller.
type Sink interface {
	Push(Event)
}
