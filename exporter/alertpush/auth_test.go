package alertpush

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// testPasswordHash is bcrypt("breakwater-test-password"), cost 4.
const testPasswordHash = "$2a$04$NJlEfT33p9pnIr8r5BDszew5YeZdoX/dZ23dlzEmbxShv9N5pylRu"

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSAndBasicAuth pushes to an Alertmanager that serves its API over
// TLS behind basic auth, configured by --alertmanager.config.file.
func TestTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pki := testenv.NewPKI(t, dir)
	cert, key, ca := pki.CertFile, pki.KeyFile, pki.CAFile
	hook := amtest.NewWebhook(t)
	am := amtest.StartWeb(t, amtest.PerAlertConfig(hook.URL("/am")), `tls_server_config:
  cert_file: `+cert+`
  key_file: `+key+`
basic_auth_users:
  breakwater: `+testPasswordHash+`
`)
	write(t, filepath.Join(dir, "password"), "breakwater-test-password\n")
	write(t, filepath.Join(dir, "wrong"), "guess\n")

	for _, tc := range []struct {
		name       string
		httpConfig string
		url        func(*url.URL) *url.URL
		delivered  bool
	}{{
		name:       "CA and password file",
		httpConfig: "tls_config:\n  ca_file: " + ca + "\nbasic_auth:\n  username: breakwater\n  password_file: " + filepath.Join(dir, "password") + "\n",
		delivered:  true,
	}, {
		name:       "credentials in the URL",
		httpConfig: "tls_config:\n  ca_file: " + ca + "\n",
		url: func(u *url.URL) *url.URL {
			u.User = url.UserPassword("breakwater", "breakwater-test-password")
			return u
		},
		delivered: true,
	}, {
		name:       "wrong password",
		httpConfig: "tls_config:\n  ca_file: " + ca + "\nbasic_auth:\n  username: breakwater\n  password_file: " + filepath.Join(dir, "wrong") + "\n",
	}, {
		name:       "untrusted certificate",
		httpConfig: "basic_auth:\n  username: breakwater\n  password_file: " + filepath.Join(dir, "password") + "\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yml")
			write(t, file, tc.httpConfig)
			u := am.URL()
			if tc.url != nil {
				u = tc.url(u)
			}
			cfg := testConfig(u)
			cfg.HTTPConfigFile = file
			p := startPusher(t, cfg)
			p.Push(containerEvent(len(tc.name), "kernel_module", escape.Blocked))
			if tc.delivered {
				amtest.Eventually(t, 20*time.Second, "the alert accepted", func() bool { return p.count(names.PushSent) == 1 })
				return
			}
			amtest.Eventually(t, 20*time.Second, "failed pushes", func() bool { return p.count(names.PushFailed) >= 2 })
			if got := p.count(names.PushSent); got != 0 {
				t.Errorf("sent = %v, want 0", got)
			}
		})
	}
	// Both accepted alerts were notified.
	amtest.Eventually(t, 20*time.Second, "two notifications", func() bool { return len(hook.Firing("/am")) == 2 })
}

func TestNewRejects(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:9093")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "auth.yml"), "basic_auth:\n  username: a\n  password: b\n")
	write(t, filepath.Join(dir, "bad.yml"), "tls_config: [\n")
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no URL", func(c *Config) { c.URLs = nil }},
		{"not http", func(c *Config) { c.URLs = []*url.URL{{Scheme: "ftp", Host: "x"}} }},
		{"zero capacity", func(c *Config) { c.QueueCapacity = 0 }},
		{"fold window beyond resolve timeout", func(c *Config) { c.FoldWindow = 10 * time.Minute }},
		{"resend delay beyond resolve timeout", func(c *Config) { c.ResendDelay = 10 * time.Minute }},
		{"bad external label", func(c *Config) { c.ExternalLabels = map[string]string{"not-a-label": "x"} }},
		{"unparsable http config", func(c *Config) { c.HTTPConfigFile = filepath.Join(dir, "bad.yml") }},
		{"missing http config", func(c *Config) { c.HTTPConfigFile = filepath.Join(dir, "none.yml") }},
		{"credentials twice", func(c *Config) {
			c.URLs = []*url.URL{{Scheme: "http", Host: "x", User: url.UserPassword("a", "b")}}
			c.HTTPConfigFile = filepath.Join(dir, "auth.yml")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(u)
			tc.edit(cfg)
			if _, err := New(nil, cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
