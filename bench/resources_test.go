package main

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testenv"
)

// TestResourcesCost runs measureResources when BREAKWATER_BENCH_RESOURCES=1 (it starts up to
// 100 containers and takes minutes); `make bench` runs it from main.
func TestResourcesCost(t *testing.T) {
	if os.Getenv("BREAKWATER_BENCH_RESOURCES") != "1" {
		t.Skip("set BREAKWATER_BENCH_RESOURCES=1 to measure")
	}
	testenv.Docker(t)
	idle := 60 * time.Second
	if s := os.Getenv("BREAKWATER_BENCH_IDLE"); s != "" {
		idle, _ = time.ParseDuration(s)
	}
	res, err := measureResources(context.Background(), slog.New(slog.DiscardHandler), resourcesOptions{
		Image: testenv.Image, Counts: []int{0, 50, 100}, Scrapes: 100, Idle: idle,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		t.Logf("containers=%d series=%d scrape_p50=%v scrape_p99=%v rss=%.1fMiB idle_cpu=%.4f cores",
			r.Containers, r.Series, r.ScrapeP50.Round(time.Microsecond), r.ScrapeP99.Round(time.Microsecond),
			float64(r.RSSBytes)/(1<<20), r.IdleCPU)
		if r.ScrapeP99 > 250*time.Millisecond || r.RSSBytes > 150<<20 {
			t.Errorf("over target at %d containers: p99 %v, RSS %d", r.Containers, r.ScrapeP99, r.RSSBytes)
		}
	}
}
