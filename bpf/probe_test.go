package bpf

import (
	"os"
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestNamesCoverEveryKernelValue(t *testing.T) {
	for i := 1; i < techniqueCount; i++ {
		if TechniqueNames[i] == "" {
			t.Errorf("technique %d has no name", i)
		}
	}
	if len(TechniqueNames) != techniqueCount || len(NsOpNames) != nsOpCount || len(NsTypeNames) != nsTypeCount ||
		len(MountOpNames) != mountOpCount || len(LostReasons) != lostReasonCount || len(PathClassNames) != pathClassCount {
		t.Error("a name table and its kernel enum differ in length")
	}
	for _, table := range [][]string{NsOpNames[1:], MountOpNames[1:], LostReasons[:], PathClassNames[1:], NsTypeNames[:]} {
		seen := map[string]bool{}
		for _, n := range table {
			if n == "" || seen[n] {
				t.Errorf("name %q empty or repeated in %v", n, table)
			}
			seen[n] = true
		}
	}
}

// loaded loads the programs for a test, which needs root, and closes them
// at its end.
func loaded(t *testing.T, opts Options) *Probe {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs")
	}
	p, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestLoadAttachesEveryHook(t *testing.T) {
	p := loaded(t, Options{MaxContainers: 64})
	for _, h := range Hooks {
		if !p.Attached(h.Program) {
			t.Errorf("%s not attached: %v", h.Program, p.AttachErrors()[h.Program])
		}
	}
	if p.CapabilitiesInferred() {
		t.Error("cap_capable is attached, yet capabilities are inferred")
	}
	lost, err := p.Lost()
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != len(LostReasons) {
		t.Errorf("lost reasons: %v", lost)
	}
}

// TestOptionalHooksFallBack loads without the optional programs, as on a
// kernel without their tracepoints: the rest attaches and capability
// checks are inferred.
func TestOptionalHooksFallBack(t *testing.T) {
	p := loaded(t, Options{MaxContainers: 64, Without: []string{"cap_capable", "io_uring_submit_req", "io_uring_complete"}})
	for _, h := range Hooks {
		if h.Optional() != !p.Attached(h.Program) {
			t.Errorf("%s attached = %v", h.Program, p.Attached(h.Program))
		}
	}
	if !p.CapabilitiesInferred() {
		t.Error("without cap_capable, capabilities must be inferred")
	}
}

// TestForgetDropsOnlyThatContainer fills the per-container maps for two
// container ids (ids no real cgroup has) and forgets one: its entries are
// gone from every map, the other's stay.
func TestForgetDropsOnlyThatContainer(t *testing.T) {
	p := loaded(t, Options{MaxContainers: 64, EventInterval: time.Millisecond})
	const gone, kept = 1<<62 + 1, 1<<62 + 2
	cpus := make([]uint64, len(mustPerCPU(t)))
	for _, id := range []uint64{gone, kept} {
		if err := p.TrackContainer(id); err != nil {
			t.Fatal(err)
		}
		if err := p.TrackSub(id+100, id); err != nil {
			t.Fatal(err)
		}
		for nr := uint16(1); nr <= 3; nr++ {
			if err := p.objs.Denied.Put(DeniedKey{Container: id, Nr: nr, Reason: 1, Err: 1}, cpus); err != nil {
				t.Fatal(err)
			}
			if err := p.objs.EventSent.Put(FoldKey{Container: id, Nr: nr}, make([]EventFold, len(cpus))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Forget(gone); err != nil {
		t.Fatal(err)
	}
	containers, _ := p.Containers()
	tracked, _ := p.Tracked()
	denied, _ := p.Denied()
	if _, ok := containers[gone]; ok {
		t.Error("forgotten container still has counters")
	}
	if _, ok := containers[kept]; !ok {
		t.Error("the other container lost its counters")
	}
	for id, rec := range tracked {
		if rec.Container == gone {
			t.Errorf("cgroup %d of the forgotten container still tracked", id)
		}
	}
	if len(tracked) != 2 {
		t.Errorf("tracked = %v, want the kept container's two cgroups", tracked)
	}
	n := 0
	for _, d := range denied {
		if d.Key.Container == gone {
			t.Errorf("denied entry %+v of the forgotten container left", d.Key)
		}
		n++
	}
	if n != 3 {
		t.Errorf("%d denied entries left, want the kept container's 3", n)
	}
}

func mustPerCPU(t *testing.T) []struct{} {
	n, err := possibleCPUs()
	if err != nil {
		t.Fatal(err)
	}
	return make([]struct{}, n)
}

// TestRunbookNamesEveryLostReason: the BreakwaterEventsLost runbook
// explains exactly the reasons the kernel counts.
func TestRunbookNamesEveryLostReason(t *testing.T) {
	b, err := os.ReadFile("../docs/runbooks/BreakwaterEventsLost.md")
	if err != nil {
		t.Fatal(err)
	}
	var inRunbook []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		inRunbook = append(inRunbook, m[1])
	}
	want := LostReasons[:]
	if !slices.Equal(inRunbook, want) {
		t.Errorf("runbook reasons %v, the kernel's %v", inRunbook, want)
	}
}
