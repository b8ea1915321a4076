package alertpush

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

// FuzzFlags feeds arbitrary --alertmanager.* flags and an arbitrary
// --alertmanager.config.file to the loader: parsing and New never panic,
// and New refuses what it cannot run with an error.
func FuzzFlags(f *testing.F) {
	for _, s := range []struct{ args, httpConfig string }{
		{"--alertmanager.url=http://127.0.0.1:9093", ""},
		{"--alertmanager.url=https://am-0:9093\n--alertmanager.url=https://am-1:9093\n--alertmanager.external-label=job=breakwater", ""},
		{"--alertmanager.url=http://a\n--alertmanager.config.file=CONFIG", "basic_auth: {username: u, password: p}\n"},
		{"--alertmanager.url=http://a\n--alertmanager.config.file=CONFIG", "tls_config: {insecure_skip_verify: true}\nbearer_token: x\n"},
		{"--alertmanager.url=http://a\n--alertmanager.config.file=CONFIG", "proxy_url: http://proxy:3128\nfollow_redirects: false\n"},
		{"--alertmanager.url=http://a\n--alertmanager.config.file=CONFIG", "basic_auth: {username: u}\nbearer_token: x\n"},
		{"--alertmanager.url=http://a\n--alertmanager.fold-window=0s", ""},
		{"--alertmanager.url=http://a\n--alertmanager.queue-capacity=-1", ""},
		{"--alertmanager.url=http://a\n--alertmanager.external-label=9bad=x", ""},
		{"--alertmanager.url=::not-a-url", ""},
		{"--alertmanager.timeout=-5s\n--alertmanager.url=http://a", ""},
		{"", ""},
	} {
		f.Add(s.args, []byte(s.httpConfig))
	}
	f.Fuzz(func(t *testing.T, args string, httpConfig []byte) {
		path := filepath.Join(t.TempDir(), "http.yml")
		if err := os.WriteFile(path, httpConfig, 0o600); err != nil {
			t.Fatal(err)
		}
		// Only the test's own file may be read: a fuzzed path could name a
		// device that never ends.
		argv := strings.Split(strings.ReplaceAll(args, "CONFIG", path), "\n")
		for _, a := range argv {
			if strings.HasPrefix(a, "--alertmanager.config.file") && a != "--alertmanager.config.file="+path ||
				strings.HasPrefix(a, "--alertmanager.rules-config") {
				return
			}
		}
		app := kingpin.New("breakwater", "")
		app.Terminate(nil)
		app.UsageWriter(discard{})
		app.ErrorWriter(discard{})
		cfg := AddFlags(app)
		if _, err := app.Parse(argv); err != nil || !cfg.Enabled() {
			return
		}
		p, err := New(slog.New(slog.DiscardHandler), cfg)
		if err != nil {
			if p != nil {
				t.Fatalf("New returned a pusher and an error: %v", err)
			}
			return
		}
		if p == nil {
			t.Fatal("New returned neither a pusher nor an error")
		}
	})
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
