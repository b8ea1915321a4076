// Package testenv holds what breakwater's tests share: finding the pinned
// tools, requiring root, and bringing up the Docker engine and test image.
package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Image is the busybox image scripts/docker-up.sh imports.
const Image = "breakwater-test/busybox:latest"

// RepoRoot returns the directory holding the main go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/breakwater/breakwater\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: repository root not found")
		}
		dir = parent
	}
}

// Tool returns the path of a pinned tool (promtool, prometheus, alertmanager,
// amtool) built by `make tools` into .tools/bin, or named by
// $BREAKWATER_TOOLS_BIN. A missing tool fails the test: CI always builds them.
func Tool(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("BREAKWATER_TOOLS_BIN")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), ".tools", "bin")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: %s not found at %s; run `make tools`", name, p)
	}
	return p
}

// RequireRoot skips a test that needs root (BPF, cgroups, Docker) when the
// suite does not run as root. CI runs as root, so there these tests run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs or drives the Docker engine")
	}
}

var dockerOnce sync.Once
var dockerErr error
var dockerOut []byte

// Docker requires root and makes sure the engine runs and the test image
// exists, running scripts/docker-up.sh once per test binary.
func Docker(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	root := RepoRoot(t)
	dockerOnce.Do(func() {
		dockerOut, dockerErr = exec.Command("bash", filepath.Join(root, "scripts", "docker-up.sh")).CombinedOutput()
	})
	if dockerErr != nil {
		t.Fatalf("docker-up: %v\n%s", dockerErr, dockerOut)
	}
}

// Run runs a command and returns its trimmed combined output, failing the
// test on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Container starts a detached container from Image with --network none and
// --pull never plus extra docker run args, and removes it when the test
// ends. It returns the full container id.
func Container(t testing.TB, name string, runArgs []string, cmd ...string) string {
	t.Helper()
	Docker(t)
	_ = exec.Command("docker", "rm", "-f", name).Run()
	args := append([]string{"run", "-d", "--pull", "never", "--network", "none", "--name", name}, runArgs...)
	args = append(args, Image)
	args = append(args, cmd...)
	id := Run(t, "docker", args...)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", id).Run() })
	return id
}

// PrivilegedArgs are the docker run arguments of a privileged container on
// this project's machines, whose bounding set lacks CAP_SYS_RESOURCE so that
// --privileged itself fails. $BREAKWATER_PRIVILEGED=1 uses real --privileged.
func PrivilegedArgs() []string {
	if os.Getenv("BREAKWATER_PRIVILEGED") == "1" {
		return []string{"--privileged"}
	}
	return []string{"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
		"--security-opt", "apparmor=unconfined", "--device-cgroup-rule", "a *:* rwm"}
}

// StopDockerd stops the shared Docker engine with SIGTERM and waits for it
// to exit. Only tests that run alone, under the exclusive machine lock and
// $BREAKWATER_TEST_ENGINE_RESTART=1, may call it.
func StopDockerd(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		t.Fatalf("dockerd pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping dockerd %d: %v", pid, err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd %d did not stop", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartDockerd starts containerd and the Docker engine again, if they are
// not running, as scripts/docker-up.sh does.
func StartDockerd(t testing.TB) {
	t.Helper()
	keepInheritedFDs()
	out, err := exec.Command("bash", filepath.Join(RepoRoot(t), "scripts", "docker-up.sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("docker-up: %v\n%s", err, out)
	}
}

// keepInheritedFDs marks every descriptor above stderr close-on-exec, so
// that the daemons a test starts do not inherit what the test inherited:
// above all the machine lock's descriptor from `flock -x ... go test`,
// which a daemon would otherwise hold, and every other test wait for,
// until the daemon stops.
func keepInheritedFDs() {
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
