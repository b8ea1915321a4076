package main

import (
	"bytes"
	"strings"
	"testing"
)

// console is what init.sh prints, cut down to two cases and the metrics.
func console(runs []caseRun, self string, counts map[string]string) string {
	var b strings.Builder
	b.WriteString("[    1.0] kernel noise\r\n=== check\r\nkernel: 6.1.0 x86_64\r\n=== check-rc 0 7.5\r\n")
	b.WriteString("=== exporter-up 18.0\r\n=== self-cgroup 0::/system.slice/docker-" + self + ".scope\r\n")
	for _, r := range runs {
		b.WriteString("=== case " + strings.ReplaceAll(r.key(), " ", "_") + "\r\n" + r.c.Args[0] + ": allowed\r\n=== case-rc 0\r\n")
	}
	b.WriteString("=== cases-done 20.0\r\n=== metrics\r\n# TYPE breakwater_escape_attempts_total counter\r\n")
	for id, tr := range counts {
		t, res, _ := strings.Cut(tr, "/")
		b.WriteString(`breakwater_escape_attempts_total{container_id="` + id + `",technique="` + t + `",result="` + res + "\"} 1\r\n")
	}
	b.WriteString("=== log\r\n=== done 21.0\r\n")
	return b.String()
}

// TestTable: a case that counted its Want passes, one that counted
// something else fails the matrix, and so does a limit that no longer holds.
func TestTable(t *testing.T) {
	var mount, uring caseRun
	for _, r := range runsOf("amd64") {
		switch r.key() {
		case "mount":
			mount = r
		case "uring-open-core":
			uring = r
		}
	}
	self := caseID(selfName)
	for _, tc := range []struct {
		name    string
		release string
		counts  map[string]string
		ok      bool
	}{
		{"wanted", "6.12.1", map[string]string{mount.id: "mount/allowed", uring.id: "proc_sys_write/allowed"}, true},
		{"limit", "6.1.0-50-cloud-amd64", map[string]string{mount.id: "mount/allowed"}, true},
		{"miss", "6.12.1", map[string]string{mount.id: "mount/allowed"}, false},
		{"wrong result", "6.12.1", map[string]string{mount.id: "mount/blocked", uring.id: "proc_sys_write/allowed"}, false},
		{"limit gone", "6.1.0-50-cloud-amd64", map[string]string{mount.id: "mount/allowed", uring.id: "proc_sys_write/allowed"}, false},
		{"counts itself", "6.12.1", map[string]string{mount.id: "mount/allowed", uring.id: "proc_sys_write/allowed", self: "runtime_socket/blocked"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := []caseRun{mount, uring}
			r := parse(console(runs, self, tc.counts))
			if !r.done || r.checkRC != 0 || r.output["mount"] != "mount: allowed" {
				t.Fatalf("parse: done %v, check exit %d, outputs %v", r.done, r.checkRC, r.output)
			}
			r.vm, r.release, r.runs = vm{"test", "amd64"}, tc.release, runs
			var out bytes.Buffer
			if got := table(&out, []*result{r}); got != tc.ok {
				t.Errorf("table passed = %v, want %v\n%s", got, tc.ok, out.String())
			}
		})
	}
}
