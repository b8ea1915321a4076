package bpf

import (
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

func TestLoadAttachesEveryHook(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs")
	}
	p, err := Load(Options{MaxContainers: 64, CounterEntries: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, h := range Hooks {
		if !p.Attached(h.Program) {
			t.Errorf("%s not attached: %v", h.Program, p.AttachErrors()[h.Program])
		}
	}
	lost, err := p.Lost()
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != len(LostReasons) {
		t.Errorf("lost reasons: %v", lost)
	}
}

// TestForgetDropsOnlyThatCgroup fills the per-container maps for two cgroup
// ids (ids no real cgroup has) and forgets one: its entries are gone from
// every map, the other's stay.
func TestForgetDropsOnlyThatCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs")
	}
	p, err := Load(Options{MaxContainers: 64, CounterEntries: 1024, EventInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const gone, kept = 1<<62 + 1, 1<<62 + 2
	perCPU := make([]uint64, ebpf.MustPossibleCPU())
	for _, id := range []uint64{gone, kept} {
		for nr := uint16(1); nr <= 3; nr++ {
			key := CounterKey{CgroupId: id, Kind: uint16(KindOutcome), Nr: nr}
			if err := p.objs.Counters.Put(key, perCPU); err != nil {
				t.Fatal(err)
			}
			if err := p.objs.EventSent.Put(key, make([]EventFold, len(perCPU))); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.objs.ExecCaps.Put(id, uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Forget(gone); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]struct {
		m     *ebpf.Map
		value any
	}{"counters": {p.objs.Counters, new([]uint64)}, "event_sent": {p.objs.EventSent, new([]EventFold)}} {
		got := map[uint64]int{}
		var key CounterKey
		it := m.m.Iterate()
		for it.Next(&key, m.value) {
			got[key.CgroupId]++
		}
		if err := it.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got[gone] != 0 || got[kept] != 3 {
			t.Errorf("%s after Forget: %d entries of the forgotten cgroup, %d of the kept one; want 0 and 3", name, got[gone], got[kept])
		}
	}
	var caps uint64
	if err := p.objs.ExecCaps.Lookup(uint64(gone), &caps); err == nil {
		t.Error("exec_caps entry of the forgotten cgroup survived")
	}
	if err := p.objs.ExecCaps.Lookup(uint64(kept), &caps); err != nil {
		t.Errorf("exec_caps entry of the kept cgroup: %v", err)
	}
}
