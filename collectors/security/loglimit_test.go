package security

import (
	"testing"
	"time"
)

func TestLogLimiterFoldsAStorm(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	logged := 0
	for i := 0; i < 1000; i++ {
		if _, ok := l.allow("c1/mount/blocked", 1, t0.Add(time.Duration(i)*time.Millisecond)); ok {
			logged++
		}
	}
	if logged != 1 {
		t.Fatalf("1000 attempts in one second logged %d lines, want 1", logged)
	}
	if s, ok := l.allow("c1/mount/blocked", 1, t0.Add(logWindowLen+time.Second)); !ok || s != 999 {
		t.Errorf("after the window: ok=%v suppressed=%d, want true 999", ok, s)
	}
	if _, ok := l.allow("c2/mount/blocked", 1, t0); !ok {
		t.Error("another container must log its own first attempt")
	}
	l.prune(t0.Add(time.Hour))
	if len(l.keys) != 0 {
		t.Errorf("prune left %d keys", len(l.keys))
	}
}

// TestLogLimiterCountsKernelRepeats: an event standing for several attempts
// (repeats the kernel folded into it) counts them all, whether it is logged
// or held back, and what is held at shutdown comes out of drain.
func TestLogLimiterCountsKernelRepeats(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	if s, ok := l.allow("c1/namespace/blocked", 1, t0); !ok || s != 0 {
		t.Fatalf("first event: ok=%v suppressed=%d", ok, s)
	}
	if _, ok := l.allow("c1/namespace/blocked", 1+499, t0.Add(time.Second)); ok {
		t.Fatal("second event inside the window was logged")
	}
	l.hold("c1/namespace/blocked", 7) // repeats no event reported before shutdown
	if s, ok := l.allow("c1/namespace/blocked", 1+99, t0.Add(logWindowLen+time.Second)); !ok || s != 500+7+99 {
		t.Errorf("after the window: ok=%v suppressed=%d, want true %d", ok, s, 500+7+99)
	}
	l.hold("c1/namespace/blocked", 3)
	l.hold("c2/mount/allowed", 2)
	got := l.drain()
	if len(got) != 2 || got["c1/namespace/blocked"] != 3 || got["c2/mount/allowed"] != 2 {
		t.Errorf("drain = %v, want c1/namespace/blocked 3 and c2/mount/allowed 2", got)
	}
}
