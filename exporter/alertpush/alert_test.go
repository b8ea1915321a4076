package alertpush

import (
	"reflect"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/names"
)

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
		name:  "allowed pod container: attempt and success",
		event: escape.Event{Identity: podID, Technique: "runtime_socket", Result: escape.Allowed},
		alerts: map[string]map[string]string{
			names.AlertEscapeAttempt: {
				"alertname": names.AlertEscapeAttempt, "severity": "critical", "technique": "runtime_socket", "result": "allowed",
				"container_id": podID.ContainerID, "name": podID.Name, "image": "registry/api:2",
				"namespace": "shop", "pod": "api-0", "container": "app",
				"job": "breakwater", "instance": "node1:9760",
			},
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
			for _, n := range alertNames(tc.event) {
				got[n] = alertLabels(n, tc.event, ext)
			}
			if !reflect.DeepEqual(got, tc.alerts) {
				t.Errorf("labels:\n got %v\nwant %v", got, tc.alerts)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	first := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
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
			"summary":     "Escape attempt (mount) from container web (image nginx:1.27)",
			"description": `Process "sh" (pid 4242) in container web (image nginx:1.27) called mount on /host, a mount escape technique, and it was blocked with EPERM. 3 attempt(s) of this kind since 2025-03-01T12:00:00Z.`,
			"runbook_url": "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/ContainerEscapeAttempt.md",
			"attempts":    "3",
		},
	}, {
		name:  "allowed socket connect in a pod",
		alert: names.AlertEscapeSucceeded,
		event: escape.Event{Identity: podID, Technique: "runtime_socket", Result: escape.Allowed, Syscall: "connect", Comm: "curl", PID: 7, Detail: "/var/run/docker.sock"},
		count: 1,
		want: map[string]string{
			"summary":     "A runtime_socket escape from container k8s_app_api-0_shop_uid_0 (image registry/api:2, pod shop/api-0) succeeded",
			"description": `Process "curl" (pid 7) in container k8s_app_api-0_shop_uid_0 (image registry/api:2, pod shop/api-0) called connect on /var/run/docker.sock, a runtime_socket escape technique, and the kernel allowed it. 1 attempt(s) of this kind since 2025-03-01T12:00:00Z.`,
			"runbook_url": "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/ContainerEscapeSucceeded.md",
			"attempts":    "1",
		},
	}, {
		name:  "unnamed container falls back to the short id",
		alert: names.AlertEscapeAttempt,
		event: escape.Event{Identity: identity.Identity{ContainerID: dockerID.ContainerID}, Technique: "ptrace", Result: escape.Blocked, Syscall: "ptrace", Errno: "EPERM", Comm: "gdb", PID: 1},
		count: 1,
		want: map[string]string{
			"summary":     "Escape attempt (ptrace) from container 4f1c0e5bd7a3",
			"description": `Process "gdb" (pid 1) in container 4f1c0e5bd7a3 called ptrace, a ptrace escape technique, and it was blocked with EPERM. 1 attempt(s) of this kind since 2025-03-01T12:00:00Z.`,
			"runbook_url": "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/ContainerEscapeAttempt.md",
			"attempts":    "1",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := annotations(tc.alert, tc.event, tc.count, first)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("annotations:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
