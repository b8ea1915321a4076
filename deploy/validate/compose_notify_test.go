package validate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
)

// TestComposeAlertmanagerNotifies runs the pinned Alertmanager as the
// compose stack runs it: the config file of its command and every file the
// stack mounts, at the paths it mounts them (under a temporary root), with
// the secrets directory holding what a user puts there, the incident
// webhook's URL a local receiver's. An escape alert posted to it arrives
// at that receiver: a real notification, through the stack's own mounts.
func TestComposeAlertmanagerNotifies(t *testing.T) {
	am := readCompose(t).Services["alertmanager"]
	hook := amtest.NewWebhook(t)
	root := t.TempDir()
	const secrets = "/etc/alertmanager/secrets"
	mountsSecrets := false
	for _, m := range am.mounts(t) {
		if !m.bind {
			continue
		}
		dst := filepath.Join(root, m.target)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if m.target == secrets {
			mountsSecrets = true
			if _, err := os.Stat(filepath.Join(composeDir, m.source)); err != nil {
				t.Errorf("the stack mounts %s from %s, which does not exist: %v", secrets, m.source, err)
			}
			// The user's secrets: here the test's own.
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, v := range map[string]string{
				"security-webhook-url": hook.URL("/security-webhook"), "slack-webhook-url": hook.URL("/slack"),
				"smtp-password": "test", "wechat-api-secret": "test",
			} {
				writeFile(t, filepath.Join(dst, name), v+"\n")
			}
			continue
		}
		src, err := filepath.Abs(filepath.Join(composeDir, m.source))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	if !mountsSecrets {
		t.Fatalf("the stack does not mount %s, where alertmanager.yml reads its secrets: every send fails", secrets)
	}

	cfgPath := flagValue(am.Command, "--config.file")
	b, err := os.ReadFile(filepath.Join(root, cfgPath))
	if err != nil {
		t.Fatalf("--config.file %s: %v", cfgPath, err)
	}
	// Container paths become the temporary root's; relative templates are
	// relative to the config file, which amtest writes elsewhere.
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(string(b), "/etc/alertmanager/", filepath.Join(root, "etc", "alertmanager")+"/")), &cfg); err != nil {
		t.Fatal(err)
	}
	tmpls, _ := cfg["templates"].([]any)
	for i, tm := range tmpls {
		if p := tm.(string); !filepath.IsAbs(p) {
			tmpls[i] = filepath.Join(root, filepath.Dir(cfgPath), p)
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := amtest.Start(t, string(out))

	// Alertmanager's API v2, as Prometheus posts alerts.
	body, err := json.Marshal([]map[string]any{{
		"labels": map[string]string{
			"alertname": "ContainerEscapeSucceeded", "severity": "critical", "technique": "runtime_socket",
			"container_id": strings.Repeat("c", 64), "name": "bw-compose-test", "job": "breakwater", "instance": "breakwater:9760",
		},
		"annotations": map[string]string{"summary": "A runtime_socket escape from container bw-compose-test succeeded"},
		"startsAt":    time.Now().Format(time.RFC3339),
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL().String()+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting the alert: %s", resp.Status)
	}
	amtest.Eventually(t, 20*time.Second, "the notification at the incident webhook", func() bool {
		for _, a := range hook.Firing("/security-webhook") {
			if a.Labels["name"] == "bw-compose-test" {
				return true
			}
		}
		return false
	})
}
