// Package hardening holds the tests that start the real exporter to prove
// its hardening claims (docs/hardening.md): least privilege as a non-root
// user, TLS and basic auth on /metrics, bounded state under container
// churn, exact counts under a denied-syscall storm, and an immediate
// restart after SIGTERM. Most need root and the Docker engine.
package hardening
