package security

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/names"
)

// TestDocsTablesMatchTable holds docs/security-metrics.md's technique and
// syscall-to-capability tables to Table, both ways: a syscall the docs
// name under a technique or a capability has it in Table, and every
// technique and capability in Table is in the docs under its row.
func TestDocsTablesMatchTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/security-metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]+)`")
	techniqueOf := map[string]string{} // syscall -> technique row naming it
	capabilityOf := map[string]string{}
	table := "" // the header of the table the line is in
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 { // | a | b |
			table = ""
			continue
		}
		if table == "" {
			table = strings.TrimSpace(cells[1])
			continue
		}
		left, right := code.FindAllStringSubmatch(cells[1], -1), code.FindAllStringSubmatch(cells[2], -1)
		if len(left) == 0 || len(right) == 0 {
			continue
		}
		if first := left[0][1]; table == "technique" && isTechnique(first) {
			for _, m := range right {
				if _, ok := Table[m[1]]; ok {
					techniqueOf[m[1]] = first
				}
			}
			continue
		}
		if capability := right[0][1]; table == "syscall" && strings.HasPrefix(capability, "CAP_") {
			for _, m := range left {
				if _, ok := Table[m[1]]; ok {
					capabilityOf[m[1]] = capability
				}
			}
		}
	}
	for name, r := range Table {
		if got := techniqueOf[name]; r.technique != "" && got != r.technique {
			t.Errorf("%s: technique %q in Table, %q in the docs", name, r.technique, got)
		}
		if got, ok := techniqueOf[name]; ok && r.technique == "" && r.nsOp == "" {
			t.Errorf("%s: under %q in the docs, no technique of its own in Table", name, got)
		}
		if got := capabilityOf[name]; got != r.capability {
			t.Errorf("%s: capability %q in Table, %q in the docs", name, r.capability, got)
		}
	}
	if len(techniqueOf) == 0 || len(capabilityOf) == 0 {
		t.Fatalf("no tables found in the docs (%d technique rows, %d capability rows)", len(techniqueOf), len(capabilityOf))
	}
}

func isTechnique(s string) bool {
	return slices.Contains(names.Techniques, s)
}
