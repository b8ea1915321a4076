package security

import (
	"slices"
	"testing"
	"time"
)

// Removed containers wait out their expiry, but never more of them than
// max: beyond that the oldest go first, so churn cannot fill the kernel's
// map and stop new containers being counted.
func TestRemovedContainersBoundedByMax(t *testing.T) {
	tab := newContainerTable(3, time.Hour, nil)
	t0 := time.Unix(1000, 0)
	for id := uint64(1); id <= 3; id++ {
		if !tab.add(id, "/docker/x", "x", t0) {
			t.Fatalf("add %d refused", id)
		}
	}
	if tab.add(4, "/docker/x", "x", t0) {
		t.Fatal("a fourth live container was taken with max three")
	}
	for id := uint64(1); id <= 3; id++ {
		tab.remove(id, t0.Add(time.Duration(id)*time.Second))
	}
	if got := tab.expire(t0.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("expired %v with three removed and max three", got)
	}
	for id := uint64(6); id <= 7; id++ {
		if !tab.add(id, "/docker/y", "y", t0) {
			t.Fatalf("add %d refused with nothing live", id)
		}
		tab.remove(id, t0.Add(time.Duration(id)*time.Second))
	}
	got := tab.expire(t0.Add(time.Minute))
	slices.Sort(got)
	if !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("expired %v, want the two oldest removed [1 2]", got)
	}
	if got := tab.expire(t0.Add(2 * time.Hour)); len(got) != 3 {
		t.Fatalf("after expiry %v went, want the three left", got)
	}
	if expired, _, _ := tab.stats(); expired != 5 {
		t.Fatalf("expired count %d, want 5", expired)
	}
}
