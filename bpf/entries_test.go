package bpf

import (
	"sync"
	"testing"

	"github.com/cilium/ebpf"
)

// TestReadsWhileTheMapChurns reads the container and cgroup maps while
// entries come and go as fast as a loop can make them, in maps as small as
// a test collector's: every read succeeds and holds every entry that stayed.
// Map.Iterate fails here ("iteration aborted") as soon as a delete makes
// it start over once too often.
func TestReadsWhileTheMapChurns(t *testing.T) {
	p := loaded(t, Options{MaxContainers: 8})
	stable := []uint64{1, 2, 3, 4, 5}
	for _, id := range stable {
		if err := p.TrackContainer(id); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var zero ContainerStats
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := 100 + i%11 // more than the map has room for beside the stable ones
			_ = p.objs.Containers.Update(id, &zero, ebpf.UpdateAny)
			_ = p.objs.TrackedCgroups.Update(id, CgroupRec{Container: id, Root: 1}, ebpf.UpdateAny)
			_ = p.objs.Containers.Delete(100 + (i+5)%11)
			_ = p.objs.TrackedCgroups.Delete(100 + (i+5)%11)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for range 3000 {
		stats, err := p.Containers()
		if err != nil {
			t.Fatalf("containers: %v", err)
		}
		tracked, err := p.Tracked()
		if err != nil {
			t.Fatalf("tracked: %v", err)
		}
		for _, id := range stable {
			if stats[id] == nil {
				t.Fatalf("container %d missing from a read: %v", id, stats)
			}
			if _, ok := tracked[id]; !ok {
				t.Fatalf("cgroup %d missing from a read", id)
			}
		}
	}
}
