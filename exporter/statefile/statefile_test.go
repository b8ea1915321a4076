package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/breakwater/breakwater/internal/names"
)

func TestStates(t *testing.T) {
	dir := t.TempDir()
	d := New(dir)
	reject := func(b []byte) error {
		if string(b) != "good" {
			return os.ErrInvalid
		}
		return nil
	}
	if found, err := d.Load("a.json", reject); found || err != nil {
		t.Fatalf("missing file: found=%v err=%v", found, err)
	}
	if err := d.Save("a.json", []byte("good")); err != nil {
		t.Fatal(err)
	}
	if found, err := New(dir).Load("a.json", reject); !found || err != nil {
		t.Fatalf("saved file: found=%v err=%v", found, err)
	}

	// A bad file is moved aside, not left for the next save to replace.
	if err := os.WriteFile(filepath.Join(dir, "b.json"), []byte("bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load("b.json", reject); err == nil || !strings.Contains(err.Error(), "b.json"+CorruptSuffix) {
		t.Fatalf("bad file: %v, want the copy named", err)
	}
	if err := d.Save("b.json", []byte("good")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b.json"+CorruptSuffix)); string(b) != "bad" {
		t.Errorf("corrupt copy = %q after a save", b)
	}
	// ReadOnly moves nothing.
	if err := os.WriteFile(filepath.Join(dir, "c.json"), []byte("bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadOnly(dir).Load("c.json", reject); err == nil {
		t.Error("read-only load of a bad file gave no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "c.json")); err != nil {
		t.Errorf("read-only load moved the file: %v", err)
	}

	// A directory where a file is cannot be saved into.
	blocked := New(filepath.Join(dir, "a.json", "sub"))
	if err := blocked.Save("d.json", []byte("good")); err == nil {
		t.Fatal("save under a file succeeded")
	}
	for _, tc := range []struct {
		d          *Dir
		file, want string
	}{
		{d, "a.json", names.StateFileOK}, {d, "b.json", names.StateFileCorrupt}, {blocked, "d.json", names.StateFileUnwritable},
	} {
		if got := tc.d.State(tc.file); got != tc.want {
			t.Errorf("State(%s) = %s, want %s", tc.file, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(d, names.MetricStateFile); n != 2*len(names.StateFileStates) {
		t.Errorf("%d series for two files in use, want %d", n, 2*len(names.StateFileStates))
	}
	// Removing the copy clears the state.
	if err := os.Remove(filepath.Join(dir, "b.json"+CorruptSuffix)); err != nil {
		t.Fatal(err)
	}
	if got := d.State("b.json"); got != names.StateFileOK {
		t.Errorf("State after the copy went = %s", got)
	}
	if got := Inspect(filepath.Join(dir, "a.json", "sub"), "d.json", reject); !strings.Contains(got, "not writable") {
		t.Errorf("Inspect of a blocked directory = %q", got)
	}
}
