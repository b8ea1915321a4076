package alertpush

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// runPusher runs a Pusher until stop, which waits for Run to return.
func runPusher(t *testing.T, cfg *Config) (*Pusher, func()) {
	t.Helper()
	p, err := New(slog.New(slog.NewTextHandler(testWriter{t}, nil)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return p, stop
}

// pendingInFile counts the alerts the state file in dir keeps.
func pendingInFile(t *testing.T, dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return 0
	}
	var f stateFile
	if err := decodeState(b, &f); err != nil {
		t.Fatalf("state file: %v", err)
	}
	n := 0
	for _, items := range f.Pending {
		n += len(items)
	}
	return n
}

// TestUndeliveredAlertsSurviveRestart: alerts for an Alertmanager that is
// down are in the state file while the pusher runs (so a kill -9 keeps
// them, not only a clean stop), and the next pusher delivers them, with
// the attempts' times, once the Alertmanager is back; a smaller queue
// drops the oldest and counts them.
func TestUndeliveredAlertsSurviveRestart(t *testing.T) {
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	am.Stop()
	dir := t.TempDir()
	cfg := testConfig(am.URL())
	cfg.State = statefile.New(dir)
	p, stop := runPusher(t, cfg)
	const n = 3
	var events []escape.Event
	for i := range n {
		e := containerEvent(i, "mount", escape.Blocked)
		e.Time = time.Now().Add(-time.Duration(n-i) * time.Second).Truncate(time.Millisecond)
		events = append(events, e)
		p.Push(e)
	}
	start := time.Now()
	amtest.Eventually(t, 10*time.Second, "the alerts in the state file", func() bool { return pendingInFile(t, dir) == n })
	t.Logf("undelivered alerts saved %s after the push", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("saved after %s, want within the 1s tick and a margin", d)
	}
	stop()

	// A restart with room for two: the oldest goes, counted.
	small := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(small, StateFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	scfg := testConfig(am.URL())
	scfg.State, scfg.QueueCapacity = statefile.New(small), 2
	sp, err := New(slog.New(slog.DiscardHandler), scfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := sp.count(names.PushDropped); got != 1 {
		t.Errorf("restored into a queue of 2: dropped = %v, want 1", got)
	}

	am.Start()
	cfg2 := testConfig(am.URL())
	cfg2.State = statefile.New(dir)
	q := startPusher(t, cfg2)
	amtest.Eventually(t, 20*time.Second, "the first run's alerts notified", func() bool { return len(hook.Firing("/am")) == n })
	for _, e := range events {
		a, ok := hook.Firing("/am")[amtest.LabelsKey(testPolicy.alertLabels(names.AlertEscapeAttempt, e, cfg.ExternalLabels))]
		if !ok {
			t.Errorf("alert of %s missing", e.Identity.Name)
			continue
		}
		if !a.StartsAt.Equal(e.Time) {
			t.Errorf("%s startsAt %s, want the attempt's %s", e.Identity.Name, a.StartsAt, e.Time)
		}
	}
	if got := q.count(names.PushSent); got != n {
		t.Errorf("sent after the restart = %v, want %d", got, n)
	}
	amtest.Eventually(t, 5*time.Second, "the state file gone once delivered", func() bool {
		_, err := os.Stat(filepath.Join(dir, StateFile))
		return os.IsNotExist(err)
	})
}

// TestCorruptAlertStateIsKept: a state file that does not decode is moved
// aside for the operator, the pusher starts empty, and the metric and
// check say so.
func TestCorruptAlertStateIsKept(t *testing.T) {
	dir := t.TempDir()
	bad := `{"version": 1, "pending": [`
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(&url.URL{Scheme: "http", Host: testenv.FreeAddr(t)})
	cfg.State = statefile.New(dir)
	if _, err := New(slog.New(slog.DiscardHandler), cfg); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, StateFile+statefile.CorruptSuffix)
	if b, err := os.ReadFile(kept); err != nil || string(b) != bad {
		t.Fatalf("corrupt copy = %q, %v", b, err)
	}
	if got := cfg.State.State(StateFile); got != names.StateFileCorrupt {
		t.Errorf("state = %s, want corrupt", got)
	}
	if got := CheckState(dir); !strings.Contains(got, kept) {
		t.Errorf("check says %q, want the copy's path", got)
	}
	// A state file of the current format reads.
	good, _ := json.Marshal(stateFile{Version: stateVersion})
	if err := os.WriteFile(filepath.Join(dir, StateFile), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := CheckState(dir); !strings.HasPrefix(got, "readable") {
		t.Errorf("check of a good file says %q", got)
	}
}
