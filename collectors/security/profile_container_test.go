package security

import (
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testenv"
)

// TestLearnedProfileConfinesTheImage learns what a workload of the test
// image does, exports that as a seccomp profile, and proves it: the same
// workload runs under it, and a call the workload never made is refused by
// it and counted as a seccomp refusal; a container of the learned image
// making a call outside the profile counts it as novel.
func TestLearnedProfileConfinesTheImage(t *testing.T) {
	testenv.Docker(t)
	// An image of its own: a profile is per image, and other containers of
	// the test image must not teach this one.
	image := fmt.Sprintf("breakwater-test/busybox:profile-%d", os.Getpid())
	testenv.Run(t, "docker", "tag", testenv.Image, image)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", image).Run() })
	dir := t.TempDir()
	r := newCollector(t, Config{ProfileDir: dir, LearningPeriod: 2 * time.Second, ResyncInterval: 250 * time.Millisecond}, nil)
	const work = "for i in 1 2 3 4 5 6; do echo hello > /tmp/f; cat /tmp/f >/dev/null; ls / >/dev/null; sleep 0.5; done"
	runIn(t, "bw-prof-learn", image, nil, "sh", "-c", work)
	waitFor(t, func() bool {
		pr, ok := r.c.profiles.get(image)
		return ok && !pr.Since.IsZero()
	}, "the image to learn its profile")

	// The HTTP endpoint and the CLI's state file say the same.
	rec := httptest.NewRecorder()
	r.c.ProfileHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/profiles/seccomp?image="+image, nil))
	if rec.Code != 200 {
		t.Fatalf("GET /profiles/seccomp: %d %s", rec.Code, rec.Body)
	}
	profile := filepath.Join(t.TempDir(), "seccomp.json")
	body, _ := io.ReadAll(rec.Body)
	if err := os.WriteFile(profile, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.c.profiles.save(time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	exported, learning, err := ExportProfile(dir, image)
	if err != nil || learning || string(exported) != string(body) {
		t.Errorf("ExportProfile from the state file = learning %v, err %v; differs from the endpoint: %v", learning, err, string(exported) != string(body))
	}

	// Confined by what it learned, the workload still does its work.
	out := runIn(t, "bw-prof-confined", image, []string{"--security-opt", "seccomp=" + profile}, "sh", "-c", work+"; echo done")
	if !strings.HasSuffix(out, "done") {
		t.Fatalf("the workload under its learned profile: %q", out)
	}
	// A call it never made is refused by the profile, and counted as such.
	bin := attempt(t)
	out = runIn(t, "bw-prof-refused", image, []string{"--security-opt", "seccomp=" + profile, "-v", bin + ":/attempt:ro"}, "/attempt", "unshare-user", "1")
	if !strings.Contains(out, "blocked") {
		t.Errorf("unshare under the learned profile: %q", out)
	}
	if got := r.series(t, "breakwater_syscalls_denied_total", map[string]string{"name": "bw-prof-refused"}, "syscall", "reason"); got["unshare/seccomp"] != 1 {
		t.Errorf("refusals of the learned profile = %v, want unshare/seccomp 1", got)
	}

	// Under the runtime's default profile, ptrace is allowed to run; the
	// learned image never made it: novel.
	runIn(t, "bw-prof-novel", image, []string{"-v", bin + ":/attempt:ro"}, "/attempt", "ptrace")
	waitFor(t, func() bool {
		return r.series(t, "breakwater_syscalls_novel_total", map[string]string{"name": "bw-prof-novel"}, "syscall")["ptrace"] == 1
	}, "ptrace to count as novel")
	if got := r.series(t, "breakwater_syscalls_novel_total", map[string]string{"name": "bw-prof-confined"}, "syscall"); len(got) != 0 {
		t.Errorf("the learned workload, rerun, made novel calls: %v", got)
	}
}

// runIn runs a command in a fresh container of an image and waits.
func runIn(t *testing.T, name, image string, runArgs []string, cmd ...string) string {
	t.Helper()
	_ = exec.Command("docker", "rm", "-f", name).Run()
	args := append([]string{"run", "--name", name, "--pull", "never", "--network", "none"}, runArgs...)
	args = append(append(args, image), cmd...)
	out, err := exec.Command("docker", args...).CombinedOutput()
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
