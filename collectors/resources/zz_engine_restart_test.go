package resources

// This file sorts last so that its test runs after the others of the package:
// it stops the shared Docker engine.

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/testenv"
)

// TestDockerEngineRestart stops the Docker engine and starts it again: the
// running collector keeps serving, a collector started while the engine is
// down falls back to raw cgroups, and both name the container again once the
// engine is back. It disrupts every container on the host, so it runs only
// when asked for: BREAKWATER_TEST_ENGINE_RESTART=1, never alongside other
// packages' tests.
func TestDockerEngineRestart(t *testing.T) {
	if os.Getenv("BREAKWATER_TEST_ENGINE_RESTART") != "1" {
		t.Skip("restarts dockerd; set BREAKWATER_TEST_ENGINE_RESTART=1 and run this package alone")
	}
	c := sharedCollector(t)
	id := testenv.Container(t, "bw-res-engine", []string{"--restart=always"}, "sleep", "600")
	named := func(c *Collector) func() (bool, string) {
		return func() (bool, string) {
			_, ok := find(gather(t, c), "container_memory_working_set_bytes", map[string]string{"container_id": id, "name": "bw-res-engine"})
			return ok, "no named series"
		}
	}
	eventually(t, 30*time.Second, "named series before the outage", named(c))

	testenv.StopDockerd(t)
	engineUp := false
	t.Cleanup(func() {
		if !engineUp {
			testenv.StartDockerd(t)
		}
	})
	if exec.Command("docker", "version").Run() == nil {
		t.Fatal("docker still answers after dockerd stopped")
	}

	// Scrapes go on while the engine is down, within the resolver's bound.
	sharedRes.Forget(id)
	start := time.Now()
	mfs := gather(t, c)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("scrape with the engine down took %v", d)
	}
	if len(mfs["machine_cpu_cores"].GetMetric()) == 0 {
		t.Error("machine metrics gone while the engine is down")
	}
	// The engine stopped the container: gone without a restart, its name
	// has no series, but its state is kept (the restart counted below is
	// counted from it).
	if m, ok := find(mfs, "breakwater_container_restarts_total", map[string]string{"name": "bw-res-engine"}); ok {
		t.Errorf("a series of a gone container that never restarted: %v", labels(m))
	}

	// A collector started now has no Docker factory: raw cgroups only.
	down, err := New(testLogger(), identity.NewResolver(testLogger(), identity.Options{}), Options{HousekeepingInterval: time.Second, DockerEvents: true})
	if err != nil {
		t.Fatalf("collector start with the engine down: %v", err)
	}
	defer down.Close()
	if len(gather(t, down)["machine_memory_bytes"].GetMetric()) == 0 {
		t.Error("no machine metrics from a collector started with the engine down")
	}

	testenv.StartDockerd(t)
	engineUp = true
	// --restart=always: the engine starts the container again, with a new
	// cgroup under the same id.
	eventually(t, 60*time.Second, "container running again", func() (bool, string) {
		out, _ := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", id).Output()
		return strings.TrimSpace(string(out)) == "true", string(out)
	})
	eventually(t, 30*time.Second, "names back on the collector that ran through the outage", named(c))
	eventually(t, 30*time.Second, "names on the collector started during the outage", named(down))
	// The running collector's Docker event stream reconnected and saw the
	// engine start the container again: one start after the first.
	eventually(t, 30*time.Second, "restart counted after the outage", func() (bool, string) {
		v, ok := restartsOf(t, c, "bw-res-engine")
		return ok && v == 1, "restarts " + strconv.FormatFloat(v, 'f', -1, 64)
	})
}
