package hardening

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testenv"
	"golang.org/x/crypto/bcrypt"
)

// TestMetricsBehindTLSAndBasicAuth serves /metrics through an
// exporter-toolkit web config with a certificate made here: only a client
// that trusts the CA and sends the right password gets metrics, and the
// TLS port speaks no plain HTTP. The collectors are off: this is about the
// web server, and needs no root.
func TestMetricsBehindTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pki := testenv.NewPKI(t, dir)
	const user, password = "prometheus", "correct horse battery staple"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	cfg := "tls_server_config:\n  cert_file: " + pki.CertFile + "\n  key_file: " + pki.KeyFile +
		"\nbasic_auth_users:\n  " + user + ": " + string(hash) + "\n"
	if err := os.WriteFile(webConfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, nil, "--web.config.file="+webConfig, "--no-collector.security", "--no-collector.resources")

	client := func(roots *x509.CertPool, maxVersion uint16) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MaxVersion: maxVersion}
		if maxVersion != 0 {
			cfg.MinVersion = tls.VersionTLS10 // offer what an old client would
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	trusted := client(pki.CA, 0)
	get := func(c *http.Client, url, user, pass string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	metrics := "https://" + e.addr + "/metrics"

	// Wait for the listener with the right credentials.
	var code int
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, body, err = get(trusted, metrics, user, password)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || code != http.StatusOK || !strings.Contains(body, "breakwater_build_info{") {
		t.Fatalf("right password over TLS: %d, %v\n%s\n%s", code, err, body, e.logText())
	}

	for _, tc := range []struct {
		name       string
		client     *http.Client
		url        string
		user, pass string
		wantCode   int    // 0: the request must fail
		wantErr    string // part of the client's error
	}{
		{"right password", trusted, metrics, user, password, http.StatusOK, ""},
		{"wrong password", trusted, metrics, user, "Tr0ub4dor&3", http.StatusUnauthorized, ""},
		{"empty password", trusted, metrics, user, "", http.StatusUnauthorized, ""},
		{"unknown user", trusted, metrics, "grafana", password, http.StatusUnauthorized, ""},
		{"no credentials", trusted, metrics, "", "", http.StatusUnauthorized, ""},
		{"landing page needs credentials too", trusted, "https://" + e.addr + "/", "", "", http.StatusUnauthorized, ""},
		{"server not signed by the client's CA", client(pki.OtherCA, 0), metrics, user, password, 0, "certificate signed by unknown authority"},
		{"TLS 1.1", client(pki.CA, tls.VersionTLS11), metrics, user, password, 0, "protocol version"},
		// Go's TLS server answers a plain HTTP request with a 400 and closes.
		{"plain HTTP to the TLS port", &http.Client{Timeout: 10 * time.Second}, "http://" + e.addr + "/metrics", user, password, http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := get(tc.client, tc.url, tc.user, tc.pass)
			if tc.wantCode == 0 {
				if err == nil {
					t.Fatalf("request succeeded with %d", code)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q lacks %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("status %d, want %d\n%s", code, tc.wantCode, body)
			}
			if hasMetrics := strings.Contains(body, "breakwater_build_info"); hasMetrics != (tc.wantCode == http.StatusOK) {
				t.Errorf("metrics in the body: %v, want %v", hasMetrics, tc.wantCode == http.StatusOK)
			}
		})
	}
	if !strings.Contains(e.logText(), "TLS is enabled.") {
		t.Errorf("the exporter did not log that TLS is on:\n%s", e.logText())
	}
}
