package alertpush

import (
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	clientruntime "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
	"github.com/breakwater/breakwater/rules"
)

// containerEvent is an attempt by the i-th of many test containers.
func containerEvent(i int, technique, result string) escape.Event {
	return escape.Event{
		Time: time.Now(),
		Identity: identity.Identity{
			ContainerID: fmt.Sprintf("%064x", 0xb0000+i),
			Name:        fmt.Sprintf("bw-am-%d", i),
			Image:       "breakwater-test/busybox:latest",
		},
		Technique: technique, Result: result,
		Syscall: "mount", Errno: "EPERM", Comm: "sh", PID: uint32(1000 + i), Detail: "/host",
	}
}

// amAlerts returns the alerts an Alertmanager holds, by label set.
func amAlerts(t *testing.T, u *url.URL) map[string]*models.GettableAlert {
	t.Helper()
	api := amclient.New(clientruntime.New(u.Host, "/api/v2", []string{"http"}), strfmt.Default)
	ok, err := api.Alert.GetAlerts(amalert.NewGetAlertsParamsWithTimeout(5 * time.Second))
	if err != nil {
		t.Fatalf("GET alerts: %v", err)
	}
	out := map[string]*models.GettableAlert{}
	for _, a := range ok.Payload {
		out[amtest.LabelsKey(a.Labels)] = a
	}
	return out
}

func TestPushedAlertArrivesWithContainerLabels(t *testing.T) {
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	p := startPusher(t, testConfig(am.URL()))

	e := containerEvent(1, "runtime_socket", escape.Allowed)
	e.Identity.Namespace, e.Identity.Pod, e.Identity.Container = "shop", "api-0", "app"
	p.Push(e)

	want := map[string]map[string]string{}
	l := map[string]string{
		"alertname": names.AlertEscapeSucceeded, "severity": "critical", "technique": "runtime_socket",
		"container_id": e.Identity.ContainerID, "name": "bw-am-1", "image": "breakwater-test/busybox:latest",
		"namespace": "shop", "pod": "api-0", "container": "app",
		"job": "breakwater", "instance": "node1:9760",
	}
	want[amtest.LabelsKey(l)] = l
	amtest.Eventually(t, 20*time.Second, "the success at the webhook", func() bool { return len(hook.Firing("/am")) == 1 })
	for k, a := range hook.Firing("/am") {
		if !reflect.DeepEqual(a.Labels, want[k]) {
			t.Errorf("webhook labels %v, want one of %v", a.Labels, want)
		}
		if a.Annotations["attempts"] != "1" || a.Annotations["runbook_url"] != rules.Default().RunbookURL+a.Labels["alertname"]+".md" || a.Annotations["summary"] == "" {
			t.Errorf("annotations %v", a.Annotations)
		}
		if a.StartsAt.Sub(e.Time).Abs() > time.Millisecond {
			t.Errorf("startsAt %s, want the attempt's time %s", a.StartsAt, e.Time)
		}
	}
	if got := p.count(names.PushSent); got != 1 {
		t.Errorf("sent = %v, want 1", got)
	}
	if got := p.latencyCount(); got != 1 {
		t.Errorf("latency samples = %d, want 1", got)
	}
	if err := testutil.CollectAndCompare(p, strings.NewReader(`
# HELP breakwater_alertmanager_notifications_total Escape alerts pushed to Alertmanager, per Alertmanager and alert, by result: sent (accepted), failed (a delivery attempt failed and is retried), dropped (queue overflow, rejected, or ended before delivery), folded (an attempt counted into an alert already sent).
# TYPE breakwater_alertmanager_notifications_total counter
breakwater_alertmanager_notifications_total{result="dropped"} 0
breakwater_alertmanager_notifications_total{result="failed"} 0
breakwater_alertmanager_notifications_total{result="folded"} 0
breakwater_alertmanager_notifications_total{result="sent"} 1
`), "breakwater_alertmanager_notifications_total"); err != nil {
		t.Error(err)
	}
}

func TestEveryAlertmanagerGetsEveryAlert(t *testing.T) {
	hook := amtest.NewWebhook(t)
	am0 := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am0")))
	am1 := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am1")))
	p := startPusher(t, testConfig(am0.URL(), am1.URL()))

	const n = 20
	for i := range n {
		p.Push(containerEvent(i, "mount", escape.Blocked))
	}
	for _, path := range []string{"/am0", "/am1"} {
		amtest.Eventually(t, 30*time.Second, path+" notified of every alert", func() bool { return len(hook.Firing(path)) == n })
	}
	if got := p.count(names.PushSent); got != 2*n {
		t.Errorf("sent = %v, want %d (every alert to both)", got, 2*n)
	}
}

func TestAlertmanagerRestartDuringBurst(t *testing.T) {
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	p := startPusher(t, testConfig(am.URL()))

	// The burst runs across a crash and a restart of the only Alertmanager.
	const n = 60
	for i := range n {
		switch i {
		case 20:
			am.Kill()
		case 50:
			am.Start()
		}
		p.Push(containerEvent(i, "namespace", escape.Blocked))
		time.Sleep(20 * time.Millisecond)
	}
	amtest.Eventually(t, 40*time.Second, "every alert of the burst notified", func() bool { return len(hook.Firing("/am")) == n })
	if p.count(names.PushFailed) == 0 {
		t.Error("no failed delivery counted while Alertmanager was down")
	}
	if got := p.count(names.PushDropped); got != 0 {
		t.Errorf("dropped = %v within the queue bound, want 0", got)
	}
}

func TestDeadAlertmanager(t *testing.T) {
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	am.Stop() // keeps the address, nothing listens on it
	p := startPusher(t, testConfig(am.URL()))

	p.Push(containerEvent(1, "ptrace", escape.Blocked))
	// Backoff 50ms doubling to 400ms: several retries within 2s, all failing.
	amtest.Eventually(t, 10*time.Second, "retries to fail", func() bool { return p.count(names.PushFailed) >= 4 })
	if got := p.count(names.PushSent); got != 0 {
		t.Fatalf("sent = %v to a dead Alertmanager", got)
	}
	// The pushed event waits in the queue; the Alertmanager coming up gets it.
	am.Start()
	amtest.Eventually(t, 20*time.Second, "the alert once Alertmanager is back", func() bool { return len(hook.Firing("/am")) == 1 })
}

func TestQueueOverflowCountsDropped(t *testing.T) {
	dead := &url.URL{Scheme: "http", Host: testenv.FreeAddr(t)}

	t.Run("events while the pusher is not running", func(t *testing.T) {
		cfg := testConfig(dead)
		cfg.QueueCapacity = 5
		p, err := New(slog.New(slog.DiscardHandler), cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			for i := range 8 {
				p.Push(containerEvent(i, "mount", escape.Blocked))
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Push blocked on a full queue")
		}
		if got := p.count(names.PushDropped); got != 3 {
			t.Errorf("dropped = %v, want 3", got)
		}
	})

	t.Run("alerts waiting for a dead Alertmanager", func(t *testing.T) {
		cfg := testConfig(dead)
		cfg.QueueCapacity = 5
		p := startPusher(t, cfg)
		for i := range 8 {
			p.Push(containerEvent(i, "mount", escape.Blocked))
			time.Sleep(10 * time.Millisecond)
		}
		amtest.Eventually(t, 10*time.Second, "3 alerts dropped", func() bool { return p.count(names.PushDropped) == 3 })
		amtest.Eventually(t, 10*time.Second, "failed retries", func() bool { return p.count(names.PushFailed) > 0 })
	})
}

func TestFolding(t *testing.T) {
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	cfg := testConfig(am.URL())
	cfg.FoldWindow = time.Second
	p := startPusher(t, cfg)

	// Nine blocked mounts 50ms apart fold into one attempt alert; the
	// tenth, allowed, opens the success alert (and no attempt alert). A
	// ptrace event of the same container is an alert of its own; the four
	// repeats the kernel folded into it count as attempts.
	start := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	var last time.Time
	for i := range 10 {
		e := containerEvent(1, "mount", escape.Blocked)
		e.Time = start.Add(time.Duration(i) * 50 * time.Millisecond)
		if i == 9 {
			e.Result, e.Errno = escape.Allowed, ""
		}
		last = e.Time
		p.Push(e)
	}
	ptrace := containerEvent(1, "ptrace", escape.Blocked)
	ptrace.Repeats = 4
	p.Push(ptrace)

	amtest.Eventually(t, 10*time.Second, "8 folded", func() bool { return p.count(names.PushFolded) == 8 })
	key := func(name, technique, result string) string {
		return amtest.LabelsKey(testPolicy.alertLabels(name, containerEvent(1, technique, result), cfg.ExternalLabels))
	}
	// The count reaches Alertmanager with the re-send a fold window later.
	amtest.Eventually(t, 20*time.Second, "attempts=9 in Alertmanager", func() bool {
		a := amAlerts(t, am.URL())[key(names.AlertEscapeAttempt, "mount", escape.Blocked)]
		return a != nil && a.Annotations[names.AnnotationAttempts] == "9"
	})
	alerts := amAlerts(t, am.URL())
	for _, tc := range []struct {
		key      string
		attempts int
		startsAt time.Time
		endsAt   time.Time
	}{
		{key(names.AlertEscapeAttempt, "mount", escape.Blocked), 9, start, start.Add(8 * 50 * time.Millisecond).Add(cfg.ResolveTimeout)},
		{key(names.AlertEscapeSucceeded, "mount", escape.Allowed), 1, last, last.Add(cfg.ResolveTimeout)},
		{key(names.AlertEscapeAttempt, "ptrace", escape.Blocked), 5, time.Time{}, time.Time{}},
	} {
		a := alerts[tc.key]
		if a == nil {
			t.Errorf("alert %q missing from Alertmanager", tc.key)
			continue
		}
		if got := a.Annotations[names.AnnotationAttempts]; got != strconv.Itoa(tc.attempts) {
			t.Errorf("%s{technique=%s} attempts = %s, want %d", a.Labels["alertname"], a.Labels["technique"], got, tc.attempts)
		}
		if !tc.startsAt.IsZero() && !time.Time(*a.StartsAt).Equal(tc.startsAt) {
			t.Errorf("%s startsAt %s, want %s", a.Labels["alertname"], time.Time(*a.StartsAt), tc.startsAt)
		}
		if !tc.endsAt.IsZero() && !time.Time(*a.EndsAt).Equal(tc.endsAt) {
			t.Errorf("%s endsAt %s, want %s", a.Labels["alertname"], time.Time(*a.EndsAt), tc.endsAt)
		}
	}

	// An attempt after the fold window starts a new fold, sent at once.
	sent := p.count(names.PushSent)
	e := containerEvent(1, "mount", escape.Blocked)
	e.Time = last.Add(cfg.FoldWindow + time.Millisecond)
	p.Push(e)
	amtest.Eventually(t, 10*time.Second, "the new fold sent", func() bool { return p.count(names.PushSent) > sent })
	if got := p.count(names.PushFolded); got != 8 {
		t.Errorf("folded = %v after the window, want still 8", got)
	}
}
