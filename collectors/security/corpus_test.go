package security

import (
	"slices"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/corpus"
)

// TestEvasionsAgreeWithCorpus: where a privileged evasion of the Docker
// tests makes the same attempt as a case of internal/corpus (which
// `make test-kernels` runs on other kernels, as root with no seccomp
// filter), both expect the same counts.
func TestEvasionsAgreeWithCorpus(t *testing.T) {
	byArgs := map[string]corpus.Case{}
	for _, c := range corpus.Cases {
		byArgs[strings.Join(c.Args, " ")] = c
	}
	shared := 0
	for _, e := range evasionCases(t) {
		// Bind mounts change what the attempt finds; a result the attempt
		// decides is not in the table.
		if !e.priv || e.seen != "" || slices.Contains(e.runArgs, "-v") {
			continue
		}
		c, ok := byArgs[strings.Join(e.args, " ")]
		if !ok || (e.as != "" && e.as != c.As) {
			continue
		}
		shared++
		if !equal(c.Want, e.want) {
			t.Errorf("evasion %s wants %v, corpus case %s %v", e.name, e.want, c.Name, c.Want)
		}
	}
	t.Logf("%d privileged evasions are corpus cases", shared)
	if shared < 10 {
		t.Errorf("only %d privileged evasions are corpus cases", shared)
	}
}
