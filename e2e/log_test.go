package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCappedLog checks that a component's log keeps its head and its most
// recent tail, and never grows past three limits.
func TestCappedLog(t *testing.T) {
	dir := t.TempDir()
	l := &cappedLog{path: filepath.Join(dir, "bw.log"), limit: 10}
	for _, w := range []string{"head-00001", "a-00000002", "b-00000003", "c-00000004", "tail"} {
		if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	l.Close()
	for name, want := range map[string]string{
		"bw.log":          "head-00001",
		"bw.tail.old.log": "c-00000004",
		"bw.tail.log":     "tail",
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", name, b, err, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 {
		t.Errorf("files %s, want bw.log and two tails", strings.Join(names, ", "))
	}
}
