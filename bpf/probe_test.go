package bpf

import (
	"os"
	"testing"
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
