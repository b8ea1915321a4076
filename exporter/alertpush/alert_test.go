package alertpush

import (
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/rules"
)

// testPolicy is the pack's defaults.
var testPolicy = func() policy {
	p, err := newPolicy(rules.Default())
	if err != nil {
		panic(err)
	}
	return p
}()

var (
	dockerID = identity.Identity{
		ContainerID: "4f1c0e5bd7a3c2f0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a49382716",
		Name:        "web", Image: "nginx:1.27",
	}
	podID = identity.Identity{
		ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Name:        "k8s_app_api-0_shop_uid_0", Image: "registry/api:2",
		Namespace: "shop", Pod: "api-0", Container: "app",
	}
)

func TestAlertLabels(t *testing.T) {
	ext := map[string]string{"job": "breakwater", "instance": "node1:9760", "technique": "must-not-win", "empty": ""}
	for _, tc := range []struct {
		name   string
		event  escape.Event
		alerts map[string]map[string]string
	}{{
		name:  "blocked docker container: no kubernetes labels",
		event: escape.Event{Identity: dockerID, Technique: "mount", Result: escape.Blocked},
		alerts: map[string]map[string]string{names.AlertEscapeAttempt: {
			"alertname": names.AlertEscapeAttempt, "severity": "warning", "technique": "mount", "result": "blocked",
			"container_id": dockerID.ContainerID, "name": "web", "image": "nginx:1.27",
			"job": "breakwater", "instance": "node1:9760",
		}},
	}, {
		// Allowed is a success only: an attempt alert of it would be the
		// same alert name at another severity.
		name:  "allowed pod container: a success, no attempt",
		event: escape.Event{Identity: podID, Technique: "runtime_socket", Result: escape.Allowed},
		alerts: map[string]map[string]string{
			names.AlertEscapeSucceeded: {
				"alertname": names.AlertEscapeSucceeded, "severity": "critical", "technique": "runtime_socket",
				"container_id": podID.ContainerID, "name": podID.Name, "image": "registry/api:2",
				"namespace": "shop", "pod": "api-0", "container": "app",
				"job": "breakwater", "instance": "node1:9760",
			},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]map[string]string{}
			for _, n := range testPolicy.alertNames(tc.event) {
				got[n] = testPolicy.alertLabels(n, tc.event, ext)
			}
			if !reflect.DeepEqual(got, tc.alerts) {
				t.Errorf("labels:\n got %v\nwant %v", got, tc.alerts)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	first := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ext := map[string]string{"job": "breakwater", "instance": "node1:9760", "cluster": "eu-1"}
	for _, tc := range []struct {
		name  string
		alert string
		event escape.Event
		count int
		want  map[string]string
	}{{
		name:  "blocked mount in a docker container",
		alert: names.AlertEscapeAttempt,
		event: escape.Event{Identity: dockerID, Technique: "mount", Result: escape.Blocked, Syscall: "mount", Errno: "EPERM", Comm: "sh", PID: 4242, Detail: "/host"},
		count: 3,
		want: map[string]string{
			"summary":       "Escape attempt (mount, blocked) from container web (image nginx:1.27)",
			"description":   `Process "sh" (pid 4242) in container web (image nginx:1.27) called mount on /host, a mount escape technique, and it was blocked with EPERM. 3 attempt(s) of this kind since 2025-03-01T12:00:00Z.`,
			"runbook_url":   "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/ContainerEscapeAttempt.md",
			"dashboard_url": "http://127.0.0.1:3000/d/breakwater-security?from=now-3h&to=now&var-cluster=eu-1&var-job=breakwater&var-instance=node1%3A9760&var-container=web",
			"attempts":      "3",
		},
	}, {
		name:  "allowed socket connect in a pod",
		alert: names.AlertEscapeSucceeded,
		event: escape.Event{Identity: podID, Technique: "runtime_socket", Result: escape.Allowed, Syscall: "connect", Comm: "curl", PID: 7, Detail: "/var/run/docker.sock"},
		count: 1,
		want: map[string]string{
			"summary":       "A runtime_socket escape from container k8s_app_api-0_shop_uid_0 (image registry/api:2, pod shop/api-0) succeeded",
			"description":   `Process "curl" (pid 7) in container k8s_app_api-0_shop_uid_0 (image registry/api:2, pod shop/api-0) called connect on /var/run/docker.sock, a runtime_socket escape technique, and the kernel allowed it. 1 attempt(s) of this kind since 2025-03-01T12:00:00Z.`,
			"runbook_url":   "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/ContainerEscapeSucceeded.md",
			"dashboard_url": "http://127.0.0.1:3000/d/breakwater-security?from=now-3h&to=now&var-cluster=eu-1&var-job=breakwater&var-instance=node1%3A9760&var-namespace=shop&var-pod=api-0&var-container=k8s_app_api-0_shop_uid_0",
			"attempts":      "1",
		},
	}, {
		name:  "unnamed container falls back to the short id",
		alert: names.AlertEscapeAttempt,
		event: escape.Event{Identity: identity.Identity{ContainerID: dockerID.ContainerID}, Technique: "ptrace", Result: escape.Blocked, Syscall: "ptrace", Errno: "EPERM", Comm: "gdb", PID: 1},
		count: 1,
		want: map[string]string{
			"summary":       "Escape attempt (ptrace, blocked) from container 4f1c0e5bd7a3",
			"description":   `Process "gdb" (pid 1) in container 4f1c0e5bd7a3 called ptrace, a ptrace escape technique, and it was blocked with EPERM. 1 attempt(s) of this kind since 2025-03-01T12:00:00Z.`,
			"runbook_url":   "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/ContainerEscapeAttempt.md",
			"dashboard_url": "http://127.0.0.1:3000/d/breakwater-security?from=now-3h&to=now&var-cluster=eu-1&var-job=breakwater&var-instance=node1%3A9760",
			"attempts":      "1",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := testPolicy.annotations(tc.alert, testPolicy.alertLabels(tc.alert, tc.event, ext), tc.event, tc.count, first)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("annotations:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCheckLabels(t *testing.T) {
	for _, tc := range []struct {
		name     string
		external map[string]string
		problems int
	}{
		{"job and instance set", map[string]string{"job": "breakwater", "instance": "n1:9760", "cluster": "eu"}, 0},
		{"instance missing", map[string]string{"job": "breakwater"}, 1},
		{"another job", map[string]string{"job": "other", "instance": "n1:9760"}, 1},
		{"nothing", nil, 2},
	} {
		if got := testPolicy.checkLabels(tc.external); len(got) != tc.problems {
			t.Errorf("%s: problems %q, want %d", tc.name, got, tc.problems)
		}
	}
}

// TestRulesConfigFile: the push reads the pack's configuration file, and
// refuses one the pack would refuse.
func TestRulesConfigFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(good, []byte("escapeAttempt: {severity: info}\nexclusions: {ci: {namespace: ci}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("exclusions: {all: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	cfg := testConfig(u)
	cfg.RulesConfigFile = good
	p, err := New(slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	blocked := escape.Event{Identity: dockerID, Technique: "mount", Result: escape.Blocked}
	if got := p.policy.alertLabels(names.AlertEscapeAttempt, blocked, nil)["severity"]; got != "info" {
		t.Errorf("severity %q from the file, want info", got)
	}
	ci := escape.Event{Identity: podID, Technique: "mount", Result: escape.Blocked}
	ci.Identity.Namespace = "ci"
	if got := p.policy.alertNames(ci); got != nil {
		t.Errorf("an excluded container raises %v", got)
	}
	for _, f := range []string{bad, filepath.Join(dir, "missing.yml")} {
		cfg.RulesConfigFile = f
		if _, err := New(slog.New(slog.DiscardHandler), cfg); err == nil || !strings.Contains(err.Error(), "rules-config") {
			t.Errorf("New with %s: %v, want a rules-config error", filepath.Base(f), err)
		}
	}
}
