package security

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/breakwater/breakwater/exporter/identity"
)

// containerTable is user space's half of the kernel's container map: which
// container each container cgroup id (the kernel's key) is, when it went
// away, and the identity captured while it still existed (the runtime
// forgets a removed container; its series must not).
type containerTable struct {
	mu       sync.Mutex
	byID     map[uint64]*container
	max      int
	expiry   time.Duration
	resolver *identity.Resolver

	expired   uint64 // containers whose series were dropped after expiry
	overLimit uint64 // containers not counted because of max
	evicted   uint64 // container-looking cgroups no runtime knows
}

type container struct {
	path        string // its own cgroup, relative to the unified root
	containerID string
	ident       identity.Identity
	seen        time.Time       // when user space learned of it
	removed     time.Time       // zero while the cgroup exists
	novel       map[string]bool // syscalls outside its image's profile it made
}

func newContainerTable(max int, expiry time.Duration, r *identity.Resolver) *containerTable {
	return &containerTable{byID: map[uint64]*container{}, max: max, expiry: expiry, resolver: r}
}

// add records a container; false means the container limit is hit.
func (t *containerTable) add(id uint64, path, containerID string, now time.Time) (added bool) {
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
	t.byID[id] = &container{path: path, containerID: containerID, seen: now,
		ident: identity.Identity{ContainerID: containerID}}
	return true
}

// live counts containers whose cgroup still exists. Callers hold mu.
func (t *containerTable) live() int {
	n := 0
	for _, c := range t.byID {
		if c.removed.IsZero() {
			n++
		}
	}
	return n
}

// running counts distinct running containers.
func (t *containerTable) running() int {
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

// remove marks a container gone; its series stay until expiry.
func (t *containerTable) remove(id uint64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byID[id]
	if ok && c.removed.IsZero() {
		c.removed = now
	}
	return ok
}

// evict forgets a container no runtime knows at once, without expiry.
func (t *containerTable) evict(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byID[id]; ok {
		delete(t.byID, id)
		t.resolver.Forget(c.containerID)
		t.evicted++
	}
}

// expire returns the containers whose series are due to go, and forgets
// them: those removed longer than expiry ago, and the oldest removed ones
// beyond max. The kernel's map holds 2*max containers, so removed ones
// waiting out their expiry never crowd out the live containers' entries;
// under churn a removed container's series go early instead. A container
// whose cgroup is gone but which still has live tasks (alive, from the
// kernel's count) does not expire: a process that left and deleted its
// cgroup is still the container's, and so are its counters; their expiry
// starts when its last task is gone.
func (t *containerTable) expire(now time.Time, alive func(id uint64) bool) []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []uint64
	var removed []uint64
	for id, c := range t.byID {
		switch {
		case c.removed.IsZero():
		case alive != nil && alive(id):
			c.removed = now // its expiry starts when its last task is gone
		case now.Sub(c.removed) >= t.expiry:
			out = append(out, id)
		default:
			removed = append(removed, id)
		}
	}
	if over := len(removed) - t.max; over > 0 {
		sort.Slice(removed, func(i, j int) bool {
			return t.byID[removed[i]].removed.Before(t.byID[removed[j]].removed)
		})
		out = append(out, removed[:over]...)
	}
	for _, id := range out {
		if t.resolver != nil {
			t.resolver.Forget(t.byID[id].containerID)
		}
		delete(t.byID, id)
		t.expired++
	}
	return out
}

// identity returns who a container is, asking the runtime until it has
// answered once. ok is false for an id the table does not know.
func (t *containerTable) identity(ctx context.Context, id uint64) (identity.Identity, bool) {
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

// known returns the identity the table holds for a container, asking no
// runtime: empty for an id it does not know (the host).
func (t *containerTable) known(id uint64) identity.Identity {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byID[id]; ok {
		return c.ident
	}
	return identity.Identity{}
}

// snapshot returns the containers whose cgroup still exists, by id.
func (t *containerTable) snapshot() map[uint64]container {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[uint64]container{}
	for id, c := range t.byID {
		if c.removed.IsZero() {
			out[id] = *c
		}
	}
	return out
}

// addNovel records syscalls a container made outside its image's profile.
func (t *containerTable) addNovel(id uint64, calls []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byID[id]
	if !ok || len(calls) == 0 {
		return
	}
	if c.novel == nil {
		c.novel = map[string]bool{}
	}
	for _, n := range calls {
		c.novel[n] = true
	}
}

// novelCalls returns, by container id, the novel syscalls of each.
func (t *containerTable) novelCalls() map[uint64][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[uint64][]string{}
	for id, c := range t.byID {
		for n := range c.novel {
			out[id] = append(out[id], n)
		}
	}
	return out
}

// has reports whether the table knows a container whose cgroup exists.
func (t *containerTable) has(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byID[id]
	return ok && c.removed.IsZero()
}

// all returns every id the table knows, removed or not.
func (t *containerTable) all() map[uint64]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[uint64]bool, len(t.byID))
	for id := range t.byID {
		out[id] = true
	}
	return out
}

func (t *containerTable) stats() (expired, overLimit, evicted uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expired, t.overLimit, t.evicted
}
