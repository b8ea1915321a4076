package logonce

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestOnceThenSummarised(t *testing.T) {
	var buf bytes.Buffer
	r := New(slog.New(slog.NewTextHandler(&buf, nil)), "cgroup looks like a container", 10*time.Minute)
	t0 := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	// Three cgroups found again at every 30s resync for 20 minutes.
	for i := range 40 {
		now := t0.Add(time.Duration(i) * 30 * time.Second)
		for _, p := range []string{"/docker/a", "/docker/b", "/docker/c"} {
			r.Warn(now, p, "path", p)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var warns, infos []string
	for _, l := range lines {
		switch {
		case strings.Contains(l, "level=WARN"):
			warns = append(warns, l)
		case strings.Contains(l, "level=INFO"):
			infos = append(infos, l)
		}
	}
	if len(warns) != 3 {
		t.Errorf("%d warnings, want one per cgroup:\n%s", len(warns), buf.String())
	}
	// Summaries at 10m and 20m (the last resync is at 19m30s: one).
	if len(infos) != 1 || !strings.Contains(infos[0], "repeats=58") || !strings.Contains(infos[0], "subjects=3") {
		t.Errorf("summaries %q, want one of 58 repeats (19 resyncs of 3, and the first of the 21st) of 3 cgroups", infos)
	}
}
