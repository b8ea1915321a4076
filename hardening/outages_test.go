package hardening

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/alertpush"
	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// pendingAlerts returns the labels of the alerts a state directory keeps
// for delivery.
func pendingAlerts(dir string) []map[string]string {
	b, err := os.ReadFile(filepath.Join(dir, alertpush.StateFile))
	if err != nil {
		return nil
	}
	var f struct {
		Pending map[string][]struct {
			Alert struct {
				Labels map[string]string `json:"labels"`
			} `json:"alert"`
		} `json:"pending"`
	}
	if json.Unmarshal(b, &f) != nil {
		return nil
	}
	var out []map[string]string
	for _, items := range f.Pending {
		for _, it := range items {
			out = append(out, it.Alert.Labels)
		}
	}
	return out
}

// escapeAlertOf returns the firing escape-attempt alert of a container at
// the webhook.
func escapeAlertOf(hook *amtest.Webhook, path, containerID string) (amtest.Alert, bool) {
	for _, a := range hook.Alerts(path) {
		if a.Labels[names.LabelAlertname] == names.AlertEscapeAttempt && a.Labels[names.LabelContainerID] == containerID {
			return a, true
		}
	}
	return amtest.Alert{}, false
}

// TestPushesSurviveKill9: an escape alert made while Alertmanager is down
// is in the state directory within a second; the exporter is killed with
// SIGKILL; the next exporter, started once Alertmanager is back, delivers
// it with the container's name and the attempt's time.
func TestPushesSurviveKill9(t *testing.T) {
	testenv.Docker(t)
	attempt := built(t, "attempt")
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	am.Stop()
	state := t.TempDir()
	args := []string{"--alertmanager.url=" + am.URL().String(), "--collector.security.profile-dir=" + state,
		"--alertmanager.external-label=instance=bw-outages-kill9"}
	first := start(t, nil, args...)
	attachedAll(t, first.metrics())

	made := time.Now()
	id := testenv.Container(t, "bw-outages-kill9", []string{"-v", attempt + ":/attempt:ro"}, "/attempt", "mount")
	amtest.Eventually(t, 30*time.Second, "the alert kept in the state directory", func() bool {
		for _, l := range pendingAlerts(state) {
			if l[names.LabelContainerID] == id {
				return true
			}
		}
		return false
	})
	t.Logf("attempt to the alert kept on disk: %s", time.Since(made).Round(time.Millisecond))
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done

	am.Start()
	restarted := time.Now()
	second := start(t, nil, args...)
	amtest.Eventually(t, 60*time.Second, "the alert from before the kill at the receiver", func() bool {
		_, ok := escapeAlertOf(hook, "/am", id)
		return ok
	})
	took := time.Since(restarted)
	t.Logf("restart to the kept alert at the receiver: %s", took.Round(time.Millisecond))
	a, _ := escapeAlertOf(hook, "/am", id)
	if a.Labels[names.LabelName] != "bw-outages-kill9" || a.Labels[names.LabelImage] != testenv.Image {
		t.Errorf("delivered alert labels %v, want the container's name and image", a.Labels)
	}
	if a.StartsAt.Before(made.Add(-time.Second)) || a.StartsAt.After(restarted) {
		t.Errorf("startsAt %s, want the attempt's time (between %s and the restart)", a.StartsAt, made)
	}
	// Measured 64ms here: the pusher runs before the programs load.
	if took > 15*time.Second {
		t.Errorf("kept alert delivered %s after the restart, want within 15s", took)
	}
	if !strings.Contains(second.logText(), "escape alerts restored from the last run") {
		t.Errorf("the second exporter did not log the restore:\n%s", tail(second.logText(), 20))
	}
}

// TestCorruptStateIsKeptAndShown: corrupt state files are moved aside for
// the operator at start, the self metric says so, and `breakwater check`
// names where the copies are; a state directory that cannot be written is
// reported by check.
func TestCorruptStateIsKeptAndShown(t *testing.T) {
	testenv.RequireRoot(t)
	state := t.TempDir()
	for _, f := range []string{"profiles.json", alertpush.StateFile} {
		if err := os.WriteFile(filepath.Join(state, f), []byte("{truncated"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := start(t, nil, "--collector.security.profile-dir="+state, "--alertmanager.url=http://"+testenv.FreeAddr(t))
	f := e.metrics()
	for _, file := range []string{"profiles.json", alertpush.StateFile} {
		if v := f.value(t, names.MetricStateFile, map[string]string{names.LabelFile: file, names.LabelState: names.StateFileCorrupt}); v != 1 {
			t.Errorf(`%s{file=%q, state="corrupt"} = %v, want 1`, names.MetricStateFile, file, v)
		}
		if b, err := os.ReadFile(filepath.Join(state, file+".corrupt")); err != nil || string(b) != "{truncated" {
			t.Errorf("corrupt copy of %s: %q, %v", file, b, err)
		}
	}
	out, _ := exec.Command(built(t, "breakwater"), "check", "--collector.security.profile-dir="+state).CombinedOutput()
	for _, file := range []string{"profiles.json", alertpush.StateFile} {
		if !strings.Contains(string(out), "a corrupt copy is kept at "+filepath.Join(state, file+".corrupt")) {
			t.Errorf("check does not name the corrupt copy of %s:\n%s", file, out)
		}
	}

	// A state directory where a file is: nothing can be saved.
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command(built(t, "breakwater"), "check", "--collector.security.profile-dir="+blocked).CombinedOutput()
	if strings.Count(string(out), "not writable") != 2 {
		t.Errorf("check does not say the state directory is not writable:\n%s", out)
	}
}

// TestAlertNamedAcrossEngineRestart restarts the Docker engine and makes
// an escape attempt in a container started the moment it is back: the
// alert at the receiver carries the container's name, never container_id
// alone. Like TestDockerEngineRestart it disrupts every container on the
// host: BREAKWATER_TEST_ENGINE_RESTART=1, under the exclusive lock.
func TestAlertNamedAcrossEngineRestart(t *testing.T) {
	if os.Getenv("BREAKWATER_TEST_ENGINE_RESTART") != "1" {
		t.Skip("restarts dockerd; set BREAKWATER_TEST_ENGINE_RESTART=1 and run it alone")
	}
	testenv.Docker(t)
	attempt := built(t, "attempt")
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	e := start(t, nil, "--alertmanager.url="+am.URL().String(), "--collector.security.profile-dir="+t.TempDir(),
		"--alertmanager.external-label=instance=bw-outages-engine")
	attachedAll(t, e.metrics())

	const rounds = 2
	for i := range rounds {
		testenv.StopDockerd(t)
		testenv.StartDockerd(t)
		up := time.Now()
		name := "bw-outages-engine-" + string(rune('a'+i))
		id := testenv.Container(t, name, []string{"-v", attempt + ":/attempt:ro"}, "/attempt", "mount")
		amtest.Eventually(t, 30*time.Second, "the alert of "+name, func() bool {
			_, ok := escapeAlertOf(hook, "/am", id)
			return ok
		})
		a, _ := escapeAlertOf(hook, "/am", id)
		t.Logf("round %d: engine back to the alert at the receiver: %s, name=%q", i, time.Since(up).Round(time.Millisecond), a.Labels[names.LabelName])
		if a.Labels[names.LabelName] != name {
			t.Errorf("round %d: the first alert of %s went out as %v, want its name", i, name, a.Labels)
		}
	}
	if strings.Contains(e.logText(), "pushed with container_id alone") {
		t.Errorf("an alert went out by container_id alone:\n%s", tail(e.logText(), 30))
	}
}

// TestAlertNamedAcrossContainerdRestart restarts containerd and makes an
// escape attempt in a pod container (through containerd alone, as kubelet's
// CRI plugin runs it) started the moment containerd is back: the alert at
// the receiver carries the pod, namespace and container. Like the engine
// restart it runs only with BREAKWATER_TEST_ENGINE_RESTART=1, under the
// exclusive lock.
func TestAlertNamedAcrossContainerdRestart(t *testing.T) {
	if os.Getenv("BREAKWATER_TEST_ENGINE_RESTART") != "1" {
		t.Skip("restarts containerd; set BREAKWATER_TEST_ENGINE_RESTART=1 and run it alone")
	}
	testenv.Docker(t)
	testenv.CtrImage(t)
	attempt := built(t, "attempt")
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	e := start(t, nil, "--alertmanager.url="+am.URL().String(), "--collector.security.profile-dir="+t.TempDir(),
		"--alertmanager.external-label=instance=bw-outages-containerd")
	attachedAll(t, e.metrics())

	testenv.StopContainerd(t)
	testenv.StartDockerd(t) // scripts/docker-up.sh starts containerd again
	up := time.Now()
	pc := testenv.PodContainer{Namespace: "bw-outages", Pod: "bw-outages-ctd", Container: "attempt",
		PodUID: testenv.NewID(t)[:32], Mounts: []string{attempt + ":/attempt"}, Detach: true}
	id, _ := testenv.CtrRun(t, pc, "sh", "-c", "/attempt mount; sleep 60")
	amtest.Eventually(t, 30*time.Second, "the pod container's alert", func() bool {
		_, ok := escapeAlertOf(hook, "/am", id)
		return ok
	})
	a, _ := escapeAlertOf(hook, "/am", id)
	t.Logf("containerd back to the alert at the receiver: %s, labels %v", time.Since(up).Round(time.Millisecond), a.Labels)
	if a.Labels[names.LabelPod] != pc.Pod || a.Labels[names.LabelNamespace] != pc.Namespace || a.Labels[names.LabelContainer] != pc.Container {
		t.Errorf("the first alert went out as %v, want pod %s/%s container %s", a.Labels, pc.Namespace, pc.Pod, pc.Container)
	}
}
