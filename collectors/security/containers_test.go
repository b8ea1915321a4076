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
	if got := tab.expire(t0.Add(time.Minute), nil); len(got) != 0 {
		t.Fatalf("expired %v with three removed and max three", got)
	}
	for id := uint64(6); id <= 7; id++ {
		if !tab.add(id, "/docker/y", "y", t0) {
			t.Fatalf("add %d refused with nothing live", id)
		}
		tab.remove(id, t0.Add(time.Duration(id)*time.Second))
	}
	got := tab.expire(t0.Add(time.Minute), nil)
	slices.Sort(got)
	if !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("expired %v, want the two oldest removed [1 2]", got)
	}
	if got := tab.expire(t0.Add(2*time.Hour), nil); len(got) != 3 {
		t.Fatalf("after expiry %v went, want the three left", got)
	}
	if expired, _, _ := tab.stats(); expired != 5 {
		t.Fatalf("expired count %d, want 5", expired)
	}
}

// A container whose cgroup is gone while its tasks live on keeps its
// counters, however long, and loses them once its last task is gone.
func TestRemovedContainerWithLiveTasksStays(t *testing.T) {
	tab := newContainerTable(3, time.Second, nil)
	t0 := time.Unix(1000, 0)
	tab.add(1, "/docker/x", "x", t0)
	tab.remove(1, t0)
	live := true
	alive := func(id uint64) bool { return id == 1 && live }
	if got := tab.expire(t0.Add(time.Hour), alive); len(got) != 0 {
		t.Fatalf("expired %v while its tasks live", got)
	}
	live = false
	if got := tab.expire(t0.Add(time.Hour), alive); len(got) != 0 {
		t.Fatalf("expired %v at once after its last task; its expiry starts then", got)
	}
	if got := tab.expire(t0.Add(time.Hour+time.Second), alive); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("expired %v an expiry after its last task, want [1]", got)
	}
}
