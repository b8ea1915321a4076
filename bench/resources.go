package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/breakwater/breakwater/collectors/resources"
	"github.com/breakwater/breakwater/exporter/identity"
)

// resourcesResult is what the resources collector costs with a number of
// running containers, measured in this process.
type resourcesResult struct {
	Containers int
	Series     int           // samples in one scrape
	ScrapeP50  time.Duration // gather + text encoding, as /metrics does
	ScrapeP99  time.Duration
	RSSBytes   uint64  // resident set of the process after the scrapes
	IdleCPU    float64 // CPU seconds per second while idle, scraped every ScrapeInterval
}

// resourcesOptions configure measureResources.
type resourcesOptions struct {
	Image          string        // local image to run (never pulled)
	Counts         []int         // container counts, e.g. 0, 50, 100
	Scrapes        int           // scrapes per count for the latency percentiles
	Idle           time.Duration // idle window for the CPU figure
	ScrapeInterval time.Duration // scrape interval during the idle window (15s)
}

// measureResources starts the resources collector (cAdvisor at its default 10s
// housekeeping), runs `sleep` containers named bw-bench-res-N through the
// Docker engine in steps, and measures scrape latency, RSS and idle CPU at
// each step. It removes its containers before returning.
func measureResources(ctx context.Context, logger *slog.Logger, o resourcesOptions) ([]resourcesResult, error) {
	if o.Scrapes <= 0 {
		o.Scrapes = 100
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = 15 * time.Second
	}
	resolver := identity.NewResolver(logger, identity.Options{})
	cli := resolver.Docker()
	if cli == nil {
		return nil, fmt.Errorf("bench: no Docker client")
	}
	c, err := resources.New(logger, resolver, resources.Options{DockerEvents: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(resourcesCollector{c})

	var ids []string
	defer func() {
		for _, id := range ids {
			_ = cli.ContainerRemove(context.WithoutCancel(ctx), id, container.RemoveOptions{Force: true})
		}
	}()
	var out []resourcesResult
	for _, n := range o.Counts {
		for len(ids) < n {
			name := "bw-bench-res-" + strconv.Itoa(len(ids))
			_ = cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
			created, err := cli.ContainerCreate(ctx,
				&container.Config{Image: o.Image, Cmd: []string{"sleep", "86400"}},
				&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
			if err != nil {
				return out, fmt.Errorf("bench: creating %s: %w", name, err)
			}
			ids = append(ids, created.ID)
			if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
				return out, fmt.Errorf("bench: starting %s: %w", name, err)
			}
		}
		// Let cAdvisor find and sample every container.
		if err := sleepCtx(ctx, 25*time.Second); err != nil {
			return out, err
		}
		r := resourcesResult{Containers: n}
		lat := make([]time.Duration, 0, o.Scrapes)
		for i := 0; i < o.Scrapes; i++ {
			start := time.Now()
			series, err := scrapeOnce(reg)
			if err != nil {
				return out, err
			}
			lat = append(lat, time.Since(start))
			r.Series = series
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r.ScrapeP50 = lat[len(lat)/2]
		r.ScrapeP99 = lat[(len(lat)*99+99)/100-1]
		r.RSSBytes = rss()
		if o.Idle > 0 {
			cpu0, t0 := cpuTime(), time.Now()
			for time.Since(t0) < o.Idle {
				if _, err := scrapeOnce(reg); err != nil {
					return out, err
				}
				if err := sleepCtx(ctx, min(o.ScrapeInterval, o.Idle-time.Since(t0))); err != nil {
					return out, err
				}
			}
			r.IdleCPU = (cpuTime() - cpu0).Seconds() / time.Since(t0).Seconds()
		}
		out = append(out, r)
	}
	return out, nil
}

func scrapeOnce(reg *prometheus.Registry) (int, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
		if err := enc.Encode(mf); err != nil {
			return 0, err
		}
	}
	return n, nil
}

type resourcesCollector struct{ c *resources.Collector }

func (resourcesCollector) Describe(chan<- *prometheus.Desc) {}
func (b resourcesCollector) Collect(ch chan<- prometheus.Metric) {
	_ = b.c.Update(ch)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
