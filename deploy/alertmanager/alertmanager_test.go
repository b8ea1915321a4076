// Package alertmanager tests the Alertmanager configuration breakwater
// ships, with the pinned amtool and a real Alertmanager.
package alertmanager

import (
	"context"
	"log/slog"
	"maps"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientruntime "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/breakwater/breakwater/exporter/alertpush"
	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/testenv"
)

func TestCheckConfig(t *testing.T) {
	out, err := exec.Command(testenv.Tool(t, "amtool"), "check-config", "alertmanager.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	for _, want := range []string{"SUCCESS", "4 inhibit rules", "4 receivers", "1 templates"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("amtool check-config output lacks %q:\n%s", want, out)
		}
	}
}

func TestRoutes(t *testing.T) {
	amtool := testenv.Tool(t, "amtool")
	for _, tc := range []struct {
		labels    []string
		receivers string
	}{
		// escapeAttempt.severity set to critical pages like a success.
		{[]string{"alertname=ContainerEscapeAttempt", "severity=critical", "container_id=abc", "technique=mount", "result=blocked"}, "security-webhook,oncall-pager"},
		{[]string{"alertname=ContainerEscapeAttempt", "severity=warning", "container_id=abc", "technique=mount", "result=blocked"}, "security-webhook,team-slack"},
		{[]string{"alertname=ContainerNovelSyscall", "severity=warning", "container_id=abc", "syscall=ptrace"}, "security-webhook,team-slack"},
		{[]string{"alertname=ContainerCrashLooping", "severity=warning"}, "team-slack"},
		{[]string{"alertname=BreakwaterPushFailing", "severity=warning"}, "team-slack"},
		{[]string{"alertname=ContainerEscapeSucceeded", "severity=critical", "container_id=abc", "technique=mount"}, "security-webhook,oncall-pager"},
		{[]string{"alertname=BreakwaterDown", "severity=critical"}, "oncall-pager"},
		{[]string{"alertname=ContainerMemoryNearLimit", "severity=warning"}, "team-slack"},
		{[]string{"alertname=BreakwaterEventsLost", "severity=warning"}, "team-slack"},
		{[]string{"alertname=ContainerPrivilegedCapabilities", "severity=info"}, "team-email"},
		{[]string{"alertname=SomethingElse"}, "team-email"},
	} {
		t.Run(strings.Join(tc.labels, ","), func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml"}, tc.labels...)
			out, err := exec.Command(amtool, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("amtool %v: %v\n%s", args, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.receivers {
				t.Errorf("routed to %q, want %q", got, tc.receivers)
			}
		})
	}
}

// testConfig is alertmanager.yml with its route tree and inhibit rules
// untouched, and every receiver a webhook on path /<receiver name>.
func testConfig(t *testing.T, hook *amtest.Webhook) string {
	t.Helper()
	return amtest.ExampleConfig(t, "alertmanager.yml", func(name string) string { return hook.URL("/" + name) })
}

func container(i int) identity.Identity {
	return identity.Identity{
		ContainerID: strings.Repeat(string(rune('a'+i)), 64),
		Name:        "bw-am-" + string(rune('a'+i)),
		Image:       "breakwater-test/busybox:latest",
	}
}

// TestEscapeInhibition pushes escape alerts with breakwater's pusher to a
// real Alertmanager running this configuration: a success silences the
// attempts of its container and the symptoms of the incident, but nothing
// of other containers.
func TestEscapeInhibition(t *testing.T) {
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, testConfig(t, hook))

	cfg := &alertpush.Config{
		URLs: []*url.URL{am.URL()}, Timeout: 5 * time.Second, QueueCapacity: 100,
		FoldWindow: 30 * time.Second, ResolveTimeout: 5 * time.Minute, ResendDelay: time.Minute,
		ExternalLabels: map[string]string{"job": "breakwater", "instance": "node1:9760"},
	}
	p, err := alertpush.New(slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)

	a, b, c := container(0), container(1), container(2)
	now := time.Now()
	// a probes with a blocked mount, then gets through the runtime socket.
	p.Push(escape.Event{Time: now, Identity: a, Technique: "mount", Result: escape.Blocked, Syscall: "mount", Errno: "EPERM", Comm: "sh", PID: 1})
	p.Push(escape.Event{Time: now, Identity: a, Technique: "runtime_socket", Result: escape.Allowed, Syscall: "connect", Comm: "sh", PID: 1, Detail: "/var/run/docker.sock"})
	p.Push(escape.Event{Time: now, Identity: b, Technique: "mount", Result: escape.Blocked, Syscall: "mount", Errno: "EPERM", Comm: "sh", PID: 2})

	// Symptoms as Prometheus would send them: a and b are escaping, c is not.
	api := amclient.New(clientruntime.New(am.URL().Host, "/api/v2", []string{"http"}), strfmt.Default)
	var symptoms models.PostableAlerts
	for _, id := range []identity.Identity{a, b, c} {
		symptoms = append(symptoms, &models.PostableAlert{
			Alert: models.Alert{Labels: models.LabelSet{
				"alertname": "ContainerSyscallsDeniedBurst", "severity": "warning",
				"container_id": id.ContainerID, "name": id.Name, "image": id.Image,
				"job": "breakwater", "instance": "node1:9760",
			}},
			StartsAt: strfmt.DateTime(now),
		})
	}
	if _, err := api.Alert.PostAlerts(amalert.NewPostAlertsParams().WithAlerts(symptoms)); err != nil {
		t.Fatal(err)
	}

	// The escape routes notify after group_wait (1s); wait for them, then
	// long enough that a notification of a's attempt would have come too.
	// b's attempt was blocked: a warning for the team, not a page.
	want := map[string]map[string]bool{
		"/security-webhook": {"ContainerEscapeSucceeded bw-am-a": true, "ContainerEscapeAttempt bw-am-b": true},
		"/oncall-pager":     {"ContainerEscapeSucceeded bw-am-a": true},
		"/team-slack":       {"ContainerEscapeAttempt bw-am-b": true},
	}
	for recv, w := range want {
		amtest.Eventually(t, 20*time.Second, "escape notifications on "+recv, func() bool { return len(hook.Firing(recv)) >= len(w) })
	}
	time.Sleep(3 * time.Second)
	for recv, w := range want {
		got := map[string]bool{}
		for _, n := range hook.Alerts(recv) {
			if strings.HasPrefix(n.Labels["alertname"], "ContainerEscape") {
				got[n.Labels["alertname"]+" "+n.Labels["name"]] = true
			}
		}
		if !maps.Equal(got, w) {
			t.Errorf("%s notified of %v, want %v", recv, got, w)
		}
	}

	// Alertmanager's own view: which alert is suppressed by which rule.
	ok, err := api.Alert.GetAlerts(amalert.NewGetAlertsParams())
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, al := range ok.Payload {
		states[al.Labels["alertname"]+" "+al.Labels["name"]] = *al.Status.State
	}
	wantStates := map[string]string{
		"ContainerEscapeSucceeded bw-am-a":     "active",
		"ContainerEscapeAttempt bw-am-a":       "suppressed",
		"ContainerEscapeAttempt bw-am-b":       "active",
		"ContainerSyscallsDeniedBurst bw-am-a": "suppressed",
		"ContainerSyscallsDeniedBurst bw-am-b": "suppressed",
		"ContainerSyscallsDeniedBurst bw-am-c": "active",
	}
	if !maps.Equal(states, wantStates) {
		t.Errorf("alert states:\n got %v\nwant %v", states, wantStates)
	}
}

// TestEscapeAlertsNeverInhibitedAcrossContainers pushes the escape alerts
// of several containers (pods of one namespace, and plain Docker containers
// without one), blocked and allowed, to a real Alertmanager running
// kube-prometheus-stack's default configuration and to our example: no
// escape alert of one container is suppressed because of another
// container's alert. Only our example silences anything: a container's own
// attempts once its escape succeeded.
func TestEscapeAlertsNeverInhibitedAcrossContainers(t *testing.T) {
	pod := func(i int, ns string) identity.Identity {
		id := container(i)
		id.Namespace, id.Pod, id.Container = ns, id.Name, "app"
		return id
	}
	shopA, shopB, shopC := pod(0, "shop"), pod(1, "shop"), pod(2, "shop")
	dockerD, dockerE := container(3), container(4)
	events := []escape.Event{
		{Identity: shopA, Technique: "mount", Result: escape.Allowed},
		{Identity: shopA, Technique: "ptrace", Result: escape.Blocked},
		{Identity: shopB, Technique: "mount", Result: escape.Blocked},
		{Identity: shopC, Technique: "runtime_socket", Result: escape.Blocked},
		{Identity: dockerD, Technique: "runtime_socket", Result: escape.Allowed},
		{Identity: dockerE, Technique: "mount", Result: escape.Blocked},
	}
	for _, tc := range []struct {
		name, config string
		suppressed   map[string]bool // alertname name technique
	}{
		{"kube-prometheus-stack 88.5.3 default", "testdata/kube-prometheus-stack-88.5.3.yml", nil},
		{"our example", "alertmanager.yml", map[string]bool{"ContainerEscapeAttempt bw-am-a ptrace": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := amtest.NewWebhook(t)
			am := amtest.Start(t, amtest.ExampleConfig(t, tc.config, func(name string) string { return hook.URL("/" + name) }))
			cfg := &alertpush.Config{
				URLs: []*url.URL{am.URL()}, Timeout: 5 * time.Second, QueueCapacity: 100,
				FoldWindow: 30 * time.Second, ResolveTimeout: 5 * time.Minute, ResendDelay: time.Minute,
				ExternalLabels: map[string]string{"job": "breakwater", "instance": "node1:9760"},
			}
			p, err := alertpush.New(slog.New(slog.DiscardHandler), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go p.Run(ctx)
			now := time.Now()
			for i, e := range events {
				e.Time, e.Syscall, e.Comm, e.PID = now, "mount", "sh", uint32(i+1)
				p.Push(e)
			}
			// A sentinel pair shows the inhibitor at work: kube-prometheus-stack's
			// critical-over-warning rule, and our config's success-over-attempt.
			api := amclient.New(clientruntime.New(am.URL().Host, "/api/v2", []string{"http"}), strfmt.Default)
			var sentinel models.PostableAlerts
			for _, sev := range []string{"critical", "warning"} {
				sentinel = append(sentinel, &models.PostableAlert{
					Alert:    models.Alert{Labels: models.LabelSet{"alertname": "Sentinel", "severity": sev, "namespace": "shop"}},
					StartsAt: strfmt.DateTime(now),
				})
			}
			if _, err := api.Alert.PostAlerts(amalert.NewPostAlertsParams().WithAlerts(sentinel)); err != nil {
				t.Fatal(err)
			}
			states := func() map[string]string {
				ok, err := api.Alert.GetAlerts(amalert.NewGetAlertsParams())
				if err != nil {
					t.Fatal(err)
				}
				st := map[string]string{}
				for _, al := range ok.Payload {
					st[al.Labels["alertname"]+" "+al.Labels["name"]+" "+al.Labels["technique"]+" "+al.Labels["severity"]] = *al.Status.State
				}
				return st
			}
			// 6 escape alerts (one per event) and the sentinels, the inhibitor done.
			var st map[string]string
			amtest.Eventually(t, 20*time.Second, "every alert in, the inhibitor settled", func() bool {
				st = states()
				settled := st["Sentinel   warning"] == "suppressed" || tc.name == "our example"
				for k := range tc.suppressed {
					found := false
					for s, v := range st {
						if strings.HasPrefix(s, k+" ") && v == "suppressed" {
							found = true
						}
					}
					settled = settled && found
				}
				return len(st) >= len(events)+2 && settled
			})
			escapes := 0
			for k, v := range st {
				if !strings.HasPrefix(k, "ContainerEscape") {
					continue
				}
				escapes++
				f := strings.Fields(k)
				want := "active"
				if tc.suppressed[strings.Join(f[:3], " ")] {
					want = "suppressed"
				}
				if v != want {
					t.Errorf("%s is %s, want %s", k, v, want)
				}
				if wantSev := map[string]string{"ContainerEscapeAttempt": "warning", "ContainerEscapeSucceeded": "critical"}[f[0]]; f[3] != wantSev {
					t.Errorf("%s: severity %s, want %s", k, f[3], wantSev)
				}
			}
			if escapes != len(events) {
				t.Errorf("%d escape alerts, want one per event (%d): %v", escapes, len(events), st)
			}
		})
	}
}
