package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testenv"
)

// restartsPrefix names the containers and the pod namespace of
// TestRestartsExact; nothing else is touched.
const restartsPrefix = "bw-restarts-"

// oneShots is how many one-shot containers each storm of
// TestRestartsExact starts.
const oneShots = 200

// TestRestartsExact is what a node does when it boots, when a Deployment
// rolls out, when a CI runner takes jobs: many containers start at once.
// breakwater runs as shipped (BPF cgroup creation and Docker's events both
// report starts) while:
//   - 200 uniquely named one-shot containers start 8 at a time, then 200 32
//     at a time, and pods of one-shot containers start through containerd
//     8 at a time: none of them restarted;
//   - beside them, containers really restart: under Docker's --restart
//     policies (compared with Docker's own RestartCount), by `docker start`
//     of a stopped container, and a pod container kubelet-style (a new
//     container under the same pod and container name each time).
//
// A name whose containers are gone without a restart exports no series, so
// once the storms are over the exposition holds exactly the running
// container's series and those of the containers that restarted, at their
// exact counts: a one-shot container counted as restarted shows as a series.
func TestRestartsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts hundreds of containers")
	}
	testenv.Docker(t)
	testenv.CtrImage(t)
	removeStaleRestarts(t)
	r := newRun(t)
	bin, _ := build(t, r, testenv.RepoRoot(t))
	st := &stack{bwAddr: testenv.FreeAddr(t)}
	st.bw = r.start("breakwater", bin, "--web.listen-address="+st.bwAddr, "--runtime.containerd-socket="+testenv.CtrSocket)
	waitReady(t, st.bw, 60*time.Second, "http://"+st.bwAddr+"/metrics", func(status int, body []byte) bool {
		s := string(body)
		return status == http.StatusOK &&
			strings.Contains(s, `breakwater_scrape_collector_success{collector="security"} 1`) &&
			strings.Contains(s, `breakwater_scrape_collector_success{collector="resources"} 1`)
	})
	began := time.Now()

	// want is every series the exposition must hold at the end, by name
	// (pod containers: namespace/pod/container).
	want := map[string]float64{}
	var mu sync.Mutex
	expect := func(key string, v float64) { mu.Lock(); want[key] = v; mu.Unlock() }

	running := restartsPrefix + "running"
	testenv.Container(t, running, nil, "sleep", "900")
	expect(running, 0)

	// The real restarts run while the storms do.
	var real sync.WaitGroup
	errs := make(chan error, 16)
	// Runs fail until the fifth, which stays up: four restarts.
	untilFifth := `n=$(cat /s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n >/s/n; [ $n -ge 5 ] && exec sleep 900; exit 1`
	policies := []struct {
		name, policy, cmd, settled string
		restarts                   int
	}{
		{"always", "always", untilFifth, "running", 4},
		{"unless-stopped", "unless-stopped", untilFifth, "running", 4},
		{"on-failure", "on-failure:3", "exit 1", "exited", 3},
	}
	for _, p := range policies {
		name := restartsPrefix + p.name
		id := testenv.Container(t, name, []string{"--restart=" + p.policy, "-v", t.TempDir() + ":/s"}, "sh", "-c", p.cmd)
		real.Add(1)
		go func() {
			defer real.Done()
			n, err := settledRestartCount(id, p.settled)
			if err != nil || n != p.restarts {
				errs <- fmt.Errorf("%s: Docker's RestartCount %d, want %d (%v)", name, n, p.restarts, err)
				return
			}
			expect(name, float64(n)) // Docker's own count
		}()
	}
	manual := restartsPrefix + "manual"
	real.Add(1)
	go func() {
		defer real.Done()
		_ = exec.Command("docker", "rm", "-f", manual).Run()
		t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", manual).Run() })
		for _, args := range [][]string{{"run", "--pull", "never", "--network", "none", "--name", manual, testenv.Image, "true"},
			{"start", "-a", manual}, {"start", "-a", manual}} {
			if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
				errs <- fmt.Errorf("docker %v: %v\n%s", args, err, out)
				return
			}
		}
		expect(manual, 2) // no policy: Docker's RestartCount stays 0
	}()
	ns, uid := strings.TrimSuffix(restartsPrefix, "-"), testenv.NewID(t)[:32]
	crashPod := "crash-" + uid[:8]
	real.Add(1)
	go func() {
		defer real.Done()
		const starts = 6
		for range starts {
			testenv.CtrRun(t, testenv.PodContainer{Namespace: ns, Pod: crashPod, Container: "app", PodUID: uid}, "true")
		}
		expect(ns+"/"+crashPod+"/app", starts-1)
	}()

	for _, parallel := range []int{8, 32} {
		t0 := time.Now()
		storm(oneShots, parallel, func(i int) {
			name := fmt.Sprintf("%s%d-%d", restartsPrefix, parallel, i)
			out, err := exec.Command("docker", "run", "--rm", "--pull", "never", "--network", "none", "--name", name, testenv.Image, "true").CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("docker run %s: %v\n%s", name, err, out)
			}
		})
		t.Logf("%d one-shot containers, %d at a time: %s", oneShots, parallel, time.Since(t0).Round(time.Millisecond))
	}
	t0 := time.Now()
	const pods = 16
	storm(pods, 8, func(i int) {
		u := testenv.NewID(t)[:32]
		testenv.CtrRun(t, testenv.PodContainer{Namespace: ns, Pod: fmt.Sprintf("oneshot-%d", i), Container: "app", PodUID: u}, "true")
	})
	t.Logf("%d one-shot pods through containerd, 8 at a time: %s", pods, time.Since(t0).Round(time.Millisecond))
	real.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Late reports (events read seconds after the start) must not change
	// it: the exposition holds exactly want, for 5s in a row.
	var got map[string]float64
	stable, deadline := 0, time.Now().Add(60*time.Second)
	for stable < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		got = restartSeries(t, st, ns)
		if maps.Equal(got, want) {
			stable++
		} else {
			stable = 0
		}
	}
	if stable < 5 {
		t.Fatalf("breakwater_container_restarts_total of this test's containers:\n got %v\nwant %v (a series of a one-shot container is a miscounted start)", got, want)
	}
	t.Logf("%d series after %d one-shot starts, exact: %v; test took %s", len(got), 2*oneShots+pods, got, time.Since(began).Round(time.Second))
}

// storm runs do(0..n-1), parallel at a time.
func storm(n, parallel int, do func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			do(i)
		}()
	}
	wg.Wait()
}

// settledRestartCount waits until Docker stopped restarting the container
// (its status is settled and stays so) and returns Docker's RestartCount.
func settledRestartCount(id, settled string) (int, error) {
	deadline := time.Now().Add(90 * time.Second)
	same, last := 0, ""
	for time.Now().Before(deadline) {
		out, err := exec.Command("docker", "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", id).Output()
		if err != nil {
			return 0, err
		}
		s := strings.TrimSpace(string(out))
		if strings.HasPrefix(s, settled+" ") && s == last {
			same++
		} else {
			same = 0
		}
		last = s
		if same >= 3 {
			return strconv.Atoi(strings.Fields(s)[1])
		}
		time.Sleep(500 * time.Millisecond)
	}
	return 0, fmt.Errorf("never settled in state %q (last %q)", settled, last)
}

// restartSeries is breakwater_container_restarts_total of this test's
// containers: Docker names with restartsPrefix, pods in namespace ns.
func restartSeries(t *testing.T, st *stack, ns string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range scrape(t, st)["breakwater_container_restarts_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		switch {
		case l["namespace"] == ns:
			out[ns+"/"+l["pod"]+"/"+l["container"]] = m.GetCounter().GetValue()
		case l["namespace"] == "" && strings.HasPrefix(l["name"], restartsPrefix):
			out[l["name"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// removeStaleRestarts removes containers a killed earlier run left behind.
func removeStaleRestarts(t *testing.T) {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "name=^"+restartsPrefix).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	for _, id := range strings.Fields(string(out)) {
		_ = exec.Command("docker", "rm", "-f", id).Run()
	}
}
