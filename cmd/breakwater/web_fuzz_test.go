package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/breakwater/breakwater/internal/testenv"
)

// FuzzWebConfig runs arbitrary YAML through the check main makes of
// --web.config.file before it loads anything: exporter-toolkit's
// web.Validate, by way of a file as the flag names one. It must return an
// error or nil, never panic. A certificate and key pair sits next to the
// file, so inputs reach past the parser into the TLS set-up.
func FuzzWebConfig(f *testing.F) {
	for _, s := range []string{
		"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
		"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.crt\n",
		"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519]\n",
		"tls_server_config:\n  cert: |\n    -----BEGIN CERTIFICATE-----\n    MIIB\n    -----END CERTIFICATE-----\n  key: x\n",
		"basic_auth_users:\n  prometheus: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n",
		"basic_auth_users:\n  p: not-a-bcrypt-hash\n",
		"http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
		"http_server_config:\n  headers:\n    Authorization: x\n",
		"rate_limit:\n  interval: 1s\n  burst: 10\n",
		"tls_server_config: {cert_file: [\n",
		"tls_server_config:\n  cert_file: /nonexistent.crt\n",
		"tls_server_config:\n  client_allowed_sans: [a]\n",
		"", "~", "{}", "- x\n", "\x00",
	} {
		f.Add([]byte(s))
	}
	pki := testenv.NewPKI(f, f.TempDir())
	crt, err := os.ReadFile(pki.CertFile)
	if err != nil {
		f.Fatal(err)
	}
	key, err := os.ReadFile(pki.KeyFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Paths in the file are read as given: keep the fuzzer away from
		// devices and pseudo-files that never end.
		for _, dir := range []string{"/dev", "/proc", "/sys"} {
			if bytes.Contains(data, []byte(dir)) {
				return
			}
		}
		dir := t.TempDir()
		for name, b := range map[string][]byte{"server.crt": crt, "server.key": key, "web.yml": data} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_ = web.Validate(filepath.Join(dir, "web.yml"))
	})
}
