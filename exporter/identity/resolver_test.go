package identity

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/breakwater/breakwater/internal/testenv"
)

func randomID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// unifiedCgroupOf reads the cgroup v2 path of a process from
// /proc/<pid>/cgroup ("0::/docker/<id>").
func unifiedCgroupOf(t *testing.T, pid string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	t.Fatalf("no unified cgroup line in /proc/%s/cgroup:\n%s", pid, b)
	return ""
}

// kernelCgroupID asks the kernel for a cgroup's id the way bpftool and
// systemd do: the file handle of a cgroup2 directory is its 64-bit id, the
// value bpf_get_current_cgroup_id() returns. It checks CgroupID
// independently of the stat it uses.
func kernelCgroupID(t *testing.T, dir string) uint64 {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
	if err != nil {
		t.Fatalf("name_to_handle_at %s: %v", dir, err)
	}
	if len(h.Bytes()) != 8 {
		t.Fatalf("cgroup file handle of %d bytes, want 8", len(h.Bytes()))
	}
	return binary.NativeEndian.Uint64(h.Bytes())
}

func TestRealContainerCgroups(t *testing.T) {
	testenv.Docker(t)
	root, err := UnifiedRoot()
	if err != nil {
		t.Fatal(err)
	}
	id := testenv.Container(t, "bw-id-cgroup", nil, "sleep", "300")
	pid := testenv.Run(t, "docker", "inspect", "-f", "{{.State.Pid}}", id)
	path := unifiedCgroupOf(t, pid)

	if got, ok := ContainerIDFromCgroupPath(path); !ok || got != id {
		t.Fatalf("ContainerIDFromCgroupPath(%q) = %q, %v; want %s", path, got, ok, id)
	}
	cgid, err := CgroupID(root, path)
	if err != nil {
		t.Fatal(err)
	}
	if want := kernelCgroupID(t, filepath.Join(root, path)); cgid != want {
		t.Fatalf("CgroupID = %d, kernel's cgroup id = %d", cgid, want)
	}

	all, err := ContainerCgroups(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(all, Cgroup{ID: cgid, Path: path}) {
		t.Fatalf("ContainerCgroups(%s) lacks {%d %s}: %v", root, cgid, path, all)
	}
	for _, c := range all {
		if _, ok := ContainerIDFromCgroupPath(c.Path); !ok || !strings.HasPrefix(c.Path, "/") {
			t.Errorf("ContainerCgroups returned a non-container cgroup %+v", c)
		}
	}
}

func TestResolveDocker(t *testing.T) {
	testenv.Docker(t)
	plain := testenv.Container(t, "bw-id-plain", nil, "sleep", "300")
	k8s := testenv.Container(t, "bw-id-k8s", []string{
		"--label", "io.kubernetes.pod.namespace=ns1",
		"--label", "io.kubernetes.pod.name=pod1",
		"--label", "io.kubernetes.container.name=c1",
	}, "sleep", "300")

	r := NewResolver(nil, Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		id   string
		want Identity
	}{
		{plain, Identity{ContainerID: plain, Name: "bw-id-plain", Image: testenv.Image}},
		{k8s, Identity{ContainerID: k8s, Name: "bw-id-k8s", Image: testenv.Image, Namespace: "ns1", Pod: "pod1", Container: "c1"}},
	} {
		if got := r.Resolve(ctx, tc.id); got != tc.want {
			t.Errorf("Resolve(%s) = %+v, want %+v", tc.id[:12], got, tc.want)
		}
	}

	// Cached: a removed container keeps its identity until Forget.
	testenv.Run(t, "docker", "rm", "-f", plain)
	if got := r.Resolve(ctx, plain); got.Name != "bw-id-plain" {
		t.Errorf("cached Resolve after removal = %+v", got)
	}
	r.Forget(plain)
	if got := r.Resolve(ctx, plain); got != (Identity{ContainerID: plain}) {
		t.Errorf("Resolve after Forget of a removed container = %+v, want the bare id", got)
	}

	// Unknown ids give the bare id and are not answered from the cache forever.
	unknown := randomID(t)
	if got := r.Resolve(ctx, unknown); got != (Identity{ContainerID: unknown}) {
		t.Errorf("Resolve(unknown) = %+v", got)
	}
	if got := r.Resolve(ctx, "not-an-id"); got != (Identity{ContainerID: "not-an-id"}) {
		t.Errorf("Resolve(invalid) = %+v", got)
	}
}

func TestResolveRetriesMisses(t *testing.T) {
	testenv.Docker(t)
	id := testenv.Container(t, "bw-id-retry", nil, "sleep", "300")
	r := NewResolver(nil, Options{})
	now := time.Now()
	r.now = func() time.Time { return now }
	// As if the first lookup ran before the engine knew the container.
	r.cache[id] = entry{id: Identity{ContainerID: id}, retryAt: now.Add(missRetry)}
	if got := r.Resolve(context.Background(), id); got.Name != "" {
		t.Fatalf("miss answered before retryAt: %+v", got)
	}
	now = now.Add(missRetry + time.Second)
	if got := r.Resolve(context.Background(), id); got.Name != "bw-id-retry" {
		t.Fatalf("miss not retried after %v: %+v", missRetry, got)
	}
}

func TestResolveContainerdCRI(t *testing.T) {
	testenv.Docker(t)
	// A container in containerd's CRI namespace, as kubelet would create it,
	// unknown to Docker. It is only created, never started.
	ctr := func(args ...string) string {
		return testenv.Run(t, "ctr", append([]string{"--address", "/run/containerd/containerd.sock", "-n", "k8s.io"}, args...)...)
	}
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	testenv.Run(t, "docker", "save", "-o", tarball, testenv.Image)
	ctr("images", "import", tarball)
	ref := "docker.io/" + testenv.Image
	if !strings.Contains(ctr("images", "ls", "-q"), ref) {
		ref = testenv.Image
	}
	id := randomID(t)
	ctr("containers", "create",
		"--label", "io.kubernetes.pod.namespace=ns2",
		"--label", "io.kubernetes.pod.name=pod2",
		"--label", "io.kubernetes.container.name=c2",
		ref, id)
	t.Cleanup(func() {
		_ = exec.Command("ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "containers", "rm", id).Run()
	})

	got := NewResolver(nil, Options{}).Resolve(context.Background(), id)
	want := Identity{ContainerID: id, Name: "c2", Image: ref, Namespace: "ns2", Pod: "pod2", Container: "c2"}
	if got != want {
		t.Fatalf("Resolve(containerd CRI container) = %+v, want %+v", got, want)
	}
}

// A runtime that is down or hangs degrades to bare ids within the bound.
func TestResolveRuntimeDown(t *testing.T) {
	dir := t.TempDir()
	hang, err := net.Listen("unix", filepath.Join(dir, "hang.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() { // accept and never answer
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct{ name, docker, cri string }{
		{"missing sockets", "unix://" + filepath.Join(dir, "none.sock"), filepath.Join(dir, "none2.sock")},
		{"hanging engine", "unix://" + filepath.Join(dir, "hang.sock"), filepath.Join(dir, "hang.sock")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewResolver(nil, Options{DockerHost: tc.docker, CRIEndpoint: tc.cri})
			id := randomID(t)
			start := time.Now()
			got := r.Resolve(context.Background(), id)
			if d := time.Since(start); d > lookupTimeout+500*time.Millisecond {
				t.Errorf("Resolve took %v", d)
			}
			if got != (Identity{ContainerID: id}) {
				t.Errorf("Resolve = %+v, want the bare id", got)
			}
			// The failed runtime is skipped for a while: the next unknown id
			// does not wait again.
			start = time.Now()
			r.Resolve(context.Background(), randomID(t))
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("second Resolve against a down runtime took %v", d)
			}
		})
	}
}

// TestSocketsFoundWhereMounted: a container has only the path its socket
// was mounted at, /run or /var/run; the resolver takes the one that exists.
func TestSocketsFoundWhereMounted(t *testing.T) {
	dir := t.TempDir()
	defer func(d, c []string) { DockerSockets, ContainerdSockets = d, c }(DockerSockets, ContainerdSockets)
	DockerSockets = []string{dir + "/var/run/docker.sock", dir + "/run/docker.sock"}
	ContainerdSockets = []string{dir + "/run/containerd/containerd.sock", dir + "/var/run/containerd/containerd.sock"}
	for _, p := range []string{DockerSockets[1], ContainerdSockets[1]} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := NewResolver(nil, Options{})
	if got := r.DockerHost(); got != "unix://"+DockerSockets[1] {
		t.Errorf("DockerHost = %q, want the /run one that exists", got)
	}
	if got := r.ContainerdSocket(); got != ContainerdSockets[1] {
		t.Errorf("ContainerdSocket = %q, want the /var/run one that exists", got)
	}
	if r := NewResolver(nil, Options{DockerHost: "tcp://127.0.0.1:2375"}); r.DockerHost() != "tcp://127.0.0.1:2375" {
		t.Errorf("an explicit Docker host is kept, got %q", r.DockerHost())
	}
}
