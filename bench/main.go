// Command bench measures what breakwater costs: the per-syscall overhead of
// its programs against no programs and against empty programs on the same
// hooks (the floor of any tracepoint tool), on the host and in a container.
// It prints figures measured in one run; docs/performance.md records them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/bench/floor"
	"github.com/breakwater/breakwater/collectors"
	"github.com/breakwater/breakwater/collectors/security"
	"github.com/breakwater/breakwater/exporter/identity"
)

const image = "breakwater-test/busybox:latest"

func main() {
	calls := flag.Int("calls", 3000000, "getppid calls per measurement")
	rounds := flag.Int("rounds", 7, "measurements per condition (the median is reported)")
	parts := flag.String("parts", "syscalls,storm,resources,alerts", "what to measure: syscalls, storm, resources, alerts")
	only := flag.String("workloads", "getppid,open,setuid,fork", "which syscall workloads to measure")
	stormCalls := flag.Int("storm-calls", 4000000, "denied calls per storm measurement")
	attempts := flag.Int("attempts", 200, "escape attempts for the syscall-to-Alertmanager latency")
	flag.Parse()
	if os.Geteuid() != 0 {
		log.Fatal("bench: needs root (loads BPF programs, runs containers)")
	}
	want := map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		want[strings.TrimSpace(p)] = true
	}
	if want["syscalls"] {
		syscallCost(*calls, *rounds, strings.Split(*only, ","))
	}
	if want["storm"] {
		stormRate(*stormCalls, *rounds)
	}
	if want["resources"] {
		resourcesCost()
	}
	if want["alerts"] {
		p50, p99, err := measureAlertLatency(context.Background(), *attempts)
		if err != nil {
			log.Fatalf("alert latency: %v", err)
		}
		fmt.Printf("\nescape attempt syscall to Alertmanager API accepted (%d attempts): p50 %s, p99 %s\n",
			*attempts, p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond))
	}
}

// resourcesCost measures the resources collector: scrape latency, RSS and
// idle CPU with 0, 50 and 100 running containers.
func resourcesCost() {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	res, err := measureResources(context.Background(), logger, resourcesOptions{
		Image: image, Counts: []int{0, 50, 100}, Scrapes: 100, Idle: 30 * time.Second, ScrapeInterval: 15 * time.Second})
	if err != nil {
		log.Fatalf("resources bench: %v", err)
	}
	fmt.Printf("\nresources collector (100 scrapes per step; idle CPU over 30s at a 15s scrape interval)\n")
	fmt.Printf("%-10s %8s %10s %10s %9s %14s\n", "containers", "series", "p50", "p99", "RSS MiB", "idle CPU cores")
	for _, r := range res {
		fmt.Printf("%-10d %8d %10s %10s %9.1f %14.4f\n", r.Containers, r.Series, r.ScrapeP50.Round(100*time.Microsecond),
			r.ScrapeP99.Round(100*time.Microsecond), float64(r.RSSBytes)/(1<<20), r.IdleCPU)
	}
}

// workload is one loop of bench/loop.c: its name and its rounds per
// measurement.
type workload struct {
	name   string
	rounds int
	what   string
}

// syscallCost measures each workload with no programs, empty programs on
// every hook breakwater uses, and breakwater, on the host and in a container.
func syscallCost(calls, rounds int, only []string) {
	const ctr = "bw-bench-loop"
	loop, cleanup := programInContainer("bench/loop.c", ctr)
	defer cleanup()
	workloads := []workload{
		{"getppid", calls, "an ordinary syscall (the budget: 1.1x the floor on the host, 1.5x in a container)"},
		{"open", calls / 6, "open and close of an ordinary file"},
		{"setuid", calls / 3, "setuid to the current uid: a capability check each round"},
		{"fork", calls / 300, "fork, exit and wait: the task-tracking hooks"},
	}
	conditions := programConditions()
	for _, w := range workloads {
		if !slices.Contains(only, w.name) {
			continue
		}
		host := func() float64 { return measure(exec.Command(loop, w.name, strconv.Itoa(w.rounds))) }
		inContainer := func() float64 {
			return measure(exec.Command("docker", "exec", ctr, "/bench/loop", w.name, strconv.Itoa(w.rounds)))
		}
		results := map[string]map[string][]float64{}
		for r := 0; r < rounds; r++ {
			for _, c := range conditions {
				teardown := c.setup()
				if results[c.name] == nil {
					results[c.name] = map[string][]float64{}
				}
				results[c.name]["host"] = append(results[c.name]["host"], host())
				results[c.name]["container"] = append(results[c.name]["container"], inContainer())
				teardown()
			}
		}
		fmt.Printf("\n%s: %s\nns per round (median of %d rounds of %d)\n", w.name, w.what, rounds, w.rounds)
		fmt.Printf("%-16s %10s %10s\n", "condition", "host", "container")
		med := map[string]map[string]float64{}
		for _, c := range conditions {
			med[c.name] = map[string]float64{"host": median(results[c.name]["host"]), "container": median(results[c.name]["container"])}
			fmt.Printf("%-16s %10.1f %10.1f\n", c.name, med[c.name]["host"], med[c.name]["container"])
		}
		for _, where := range []string{"host", "container"} {
			floor := med["empty programs"][where] - med["none"][where]
			bw := med["breakwater"][where] - med["none"][where]
			fmt.Printf("%s: empty programs add %.1f ns, breakwater adds %.1f ns: %.2fx the floor\n", where, floor, bw, bw/floor)
		}
	}
}

// condition is a set of programs on the syscall hooks during a measurement.
type condition struct {
	name  string
	setup func() (teardown func())
}

// programConditions are: nothing attached, empty programs on sys_enter and
// sys_exit, and breakwater's security collector as the exporter runs it.
func programConditions() []condition {
	return []condition{
		{"none", func() func() { return func() {} }},
		{"empty programs", func() func() {
			f, err := floor.Load()
			if err != nil {
				log.Fatalf("floor: %v", err)
			}
			return func() { f.Close() }
		}},
		{"breakwater", func() func() { return startSecurity(10 * time.Millisecond) }}, // the flag's default
	}
}

// startSecurity starts the security collector with every other setting at
// its default and returns its Close.
func startSecurity(eventInterval time.Duration) func() {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := security.New(collectors.Deps{Logger: logger, Identity: identity.NewResolver(logger, identity.Options{}),
		Health: &collectors.Health{}}, security.Config{Expiry: 5 * time.Minute, MaxContainers: 1024,
		EventInterval: eventInterval})
	if err != nil {
		log.Fatalf("breakwater: %v", err)
	}
	return func() { c.Close() }
}

// stormRate measures how many denied escape attempts per second a container
// makes (unshare(CLONE_NEWUSER) under Docker's default seccomp profile, one
// process per CPU), with nothing attached, empty programs, breakwater as it
// runs, and breakwater sending every attempt to the ring buffer
// (--collector.security.event-interval=0).
func stormRate(calls, rounds int) {
	const ctr = "bw-bench-storm"
	_, cleanup := programInContainer("hardening/testdata/storm.c", ctr)
	defer cleanup()

	conditions := append(programConditions(),
		condition{"every event", func() func() { return startSecurity(0) }})
	rates := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, c := range conditions {
			teardown := c.setup()
			out, err := exec.Command("docker", "exec", ctr, "/bench/storm", strconv.Itoa(calls), strconv.Itoa(runtime.NumCPU())).CombinedOutput()
			teardown()
			if err != nil {
				log.Fatalf("storm: %v\n%s", err, out)
			}
			var made, eperm, other int64
			var secs, rate float64
			if _, err := fmt.Sscanf(string(out), "calls=%d eperm=%d other=%d seconds=%g rate=%g", &made, &eperm, &other, &secs, &rate); err != nil || eperm != made {
				log.Fatalf("storm output %q: %v", out, err)
			}
			rates[c.name] = append(rates[c.name], rate)
		}
	}
	fmt.Printf("\ndenied unshare(CLONE_NEWUSER) in a container, %d processes (median of %d rounds of %d calls)\n", runtime.NumCPU(), rounds, calls)
	fmt.Printf("%-16s %14s %10s\n", "condition", "calls/s", "vs none")
	none := median(rates["none"])
	for _, c := range conditions {
		m := median(rates[c.name])
		fmt.Printf("%-16s %14.0f %9.2fx\n", c.name, m, m/none)
	}
}

// programInContainer builds a static program from a C source and starts a
// container named ctr that idles with it at /bench/<name>. It returns the
// program's path on the host and what removes both.
func programInContainer(src, ctr string) (hostPath string, cleanup func()) {
	dir, err := os.MkdirTemp("", "bw-bench")
	if err != nil {
		log.Fatal(err)
	}
	hostPath = filepath.Join(dir, strings.TrimSuffix(filepath.Base(src), ".c"))
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", hostPath, src).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		log.Fatalf("gcc: %v\n%s", err, out)
	}
	_ = exec.Command("docker", "rm", "-f", ctr).Run()
	if out, err := exec.Command("docker", "run", "-d", "--name", ctr, "--pull", "never", "--network", "none",
		"-v", dir+":/bench:ro", image, "sleep", "3600").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		log.Fatalf("docker run: %v\n%s", err, out)
	}
	return hostPath, func() {
		_ = exec.Command("docker", "rm", "-f", ctr).Run()
		os.RemoveAll(dir)
	}
}

func measure(cmd *exec.Cmd) float64 {
	out, err := cmd.CombinedOutput()
	if err != nil {
		log.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		log.Fatalf("parsing %q: %v", out, err)
	}
	return v
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
