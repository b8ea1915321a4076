package resources

import (
	"context"
	"testing"

	"github.com/breakwater/breakwater/exporter/identity"
)

// A start no runtime can name yet (Docker down or slow on a node that
// runs containerd pods too) must not hold back the starts that can be
// named, and the count must not depend on the order names arrive in.
func TestRestartsIndependentOfNamingOrder(t *testing.T) {
	ctx := context.Background()
	// No runtime: only starts that carry their identity are named.
	r := newRestarts(testLogger(), identity.NewResolver(nil, identity.Options{}), 0)
	crash := identity.Identity{Namespace: "dev", Pod: "web-0", Container: "crash", Image: "busybox"}
	seeded := identity.Identity{Name: "db", Image: "postgres"}

	r.report(ctx, start{id: "unnamed", ino: 1}, false)
	pause := identity.Identity{Namespace: "dev", Pod: "web-0", Image: "pause", Sandbox: true}
	r.report(ctx, start{id: "p1", ino: 2, who: &pause}, false)
	r.report(ctx, start{id: "p2", ino: 3, who: &pause}, false)
	for i := uint64(0); i < 8; i++ {
		who := crash
		who.ContainerID = "c" + string(rune('0'+i))
		r.report(ctx, start{id: who.ContainerID, ino: 10 + i, who: &who}, false)
	}
	// The db container ran before breakwater started; its restart is
	// named before the report of that first run.
	r.report(ctx, start{id: "db", ino: 30, who: &seeded}, false)
	r.report(ctx, start{id: "db", ino: 31, who: &seeded}, true)

	got := map[string]float64{}
	for k, s := range r.series {
		got[k.container+k.name] = s.restarts()
	}
	if got["crash"] != 7 {
		t.Errorf("crash: %v restarts behind an unnamed start, want 7 (eight starts)", got["crash"])
	}
	if got["db"] != 1 {
		t.Errorf("db: %v restarts, want 1 (one start after a seeded run, whatever the order)", got["db"])
	}
	if len(r.series) != 2 {
		t.Errorf("series %v: the pod sandbox has none", got)
	}
	if len(r.pending) != 1 {
		t.Errorf("pending %v, want the unnamed start only", r.pending)
	}
}
