package security

import (
	"testing"
	"time"
)

func TestLogLimiterFoldsAStorm(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	logged := 0
	var lastSuppressed int
	for i := 0; i < 1000; i++ {
		if s, ok := l.allow("c1/mount/blocked", t0.Add(time.Duration(i)*time.Millisecond)); ok {
			logged++
			lastSuppressed = s
		}
	}
	if logged != 1 {
		t.Fatalf("1000 attempts in one second logged %d lines, want 1", logged)
	}
	if s, ok := l.allow("c1/mount/blocked", t0.Add(logWindowLen+time.Second)); !ok || s != 999 {
		t.Errorf("after the window: ok=%v suppressed=%d, want true 999", ok, s)
	}
	if _, ok := l.allow("c2/mount/blocked", t0); !ok {
		t.Error("another container must log its own first attempt")
	}
	l.prune(t0.Add(time.Hour))
	if len(l.keys) != 0 {
		t.Errorf("prune left %d keys", len(l.keys))
	}
	_ = lastSuppressed
}
