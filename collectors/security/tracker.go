package security

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/breakwater/breakwater/exporter/identity"
)

// cgroupTable is the user-space half of the tracked-cgroup map: which cgroup
// ids belong to which container, when they went away, and the identity
// captured while the container still existed (the runtime forgets a removed
// container, its series must not).
type cgroupTable struct {
	mu       sync.Mutex
	byID     map[uint64]*trackedCgroup
	max      int
	expiry   time.Duration
	resolver *identity.Resolver

	expired   uint64 // series sets dropped after expiry
	overLimit uint64 // container cgroups not tracked because of max
}

type trackedCgroup struct {
	path        string
	containerID string
	ident       identity.Identity
	removed     time.Time // zero while the cgroup exists
}

func newCgroupTable(max int, expiry time.Duration, r *identity.Resolver) *cgroupTable {
	return &cgroupTable{byID: map[uint64]*trackedCgroup{}, max: max, expiry: expiry, resolver: r}
}

// add records a container cgroup; false means the container limit is hit.
func (t *cgroupTable) add(id uint64, path, containerID string) (added bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byID[id]; ok {
		c.removed = time.Time{}
		return true
	}
	if t.live() >= t.max {
		t.overLimit++
		return false
	}
	t.byID[id] = &trackedCgroup{path: path, containerID: containerID, ident: identity.Identity{ContainerID: containerID}}
	return true
}

// live counts cgroups that still exist. Callers hold mu.
func (t *cgroupTable) live() int {
	n := 0
	for _, c := range t.byID {
		if c.removed.IsZero() {
			n++
		}
	}
	return n
}

// containers counts distinct live containers.
func (t *cgroupTable) containers() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[string]bool{}
	for _, c := range t.byID {
		if c.removed.IsZero() {
			seen[c.containerID] = true
		}
	}
	return len(seen)
}

// remove marks a cgroup gone; its series stay until expiry.
func (t *cgroupTable) remove(id uint64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byID[id]
	if ok && c.removed.IsZero() {
		c.removed = now
	}
	return ok
}

// expire returns the cgroups whose series are due to go, and forgets them.
func (t *cgroupTable) expire(now time.Time) []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []uint64
	gone := map[string]bool{}
	for id, c := range t.byID {
		if !c.removed.IsZero() && now.Sub(c.removed) >= t.expiry {
			out = append(out, id)
			gone[c.containerID] = true
			delete(t.byID, id)
		}
	}
	for _, c := range t.byID {
		delete(gone, c.containerID) // still has a cgroup
	}
	for id := range gone {
		t.resolver.Forget(id)
		t.expired++
	}
	return out
}

// identity returns who a tracked cgroup belongs to, asking the runtime until
// it has answered once.
func (t *cgroupTable) identity(ctx context.Context, id uint64) (identity.Identity, bool) {
	t.mu.Lock()
	c, ok := t.byID[id]
	if !ok {
		t.mu.Unlock()
		return identity.Identity{}, false
	}
	ident, cid, removed := c.ident, c.containerID, !c.removed.IsZero()
	t.mu.Unlock()
	if ident.Name != "" || removed || t.resolver == nil {
		return ident, true
	}
	resolved := t.resolver.Resolve(ctx, cid)
	if resolved.Name != "" || resolved.Pod != "" {
		t.mu.Lock()
		c.ident = resolved
		t.mu.Unlock()
		return resolved, true
	}
	return ident, true
}

// known returns the identity the table holds for a cgroup, asking no
// runtime: empty for a cgroup it does not know (a host process).
func (t *cgroupTable) known(id uint64) identity.Identity {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byID[id]; ok {
		return c.ident
	}
	return identity.Identity{}
}

// ids returns a snapshot of the tracked cgroup ids that still exist.
func (t *cgroupTable) liveIDs() map[uint64]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[uint64]string{}
	for id, c := range t.byID {
		if c.removed.IsZero() {
			out[id] = c.path
		}
	}
	return out
}

func (t *cgroupTable) stats() (expired, overLimit uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expired, t.overLimit
}

// runtimeHelperComm mirrors the BPF side's runtime_helper: the names runc and
// crun run under while they set a container up.
func runtimeHelperComm(comm string) bool {
	return strings.HasPrefix(comm, "runc") || comm == "crun" || comm == "exe"
}

// alreadyStarted reports whether a process of the cgroup has already executed
// the container's own program, for a cgroup that user space learned of after
// its first exec.
func alreadyStarted(root, path string) bool {
	b, err := os.ReadFile(filepath.Join(root, path, "cgroup.procs"))
	if err != nil {
		return false
	}
	for _, pid := range strings.Fields(string(b)) {
		comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
		if err == nil && !runtimeHelperComm(strings.TrimSpace(string(comm))) {
			return true
		}
	}
	return false
}
