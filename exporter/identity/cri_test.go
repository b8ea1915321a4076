package identity

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/breakwater/breakwater/internal/testenv"
)

// criRuntime starts a containerd of the test's own, whose CRI plugin runs
// pod sandboxes here: the shared one's lowers the sandbox's oom_score_adj,
// which this machine's missing CAP_SYS_RESOURCE refuses
// (restrict_oom_score_adj), and its pause image cannot be pulled (no
// registry): a copy of the test image that sleeps stands in for it. It
// returns the socket, the test image's reference there and the client.
func criRuntime(t *testing.T) (socket, image string, rt criapi.RuntimeServiceClient) {
	t.Helper()
	testenv.Docker(t)
	dir := t.TempDir()
	socket = filepath.Join(dir, "containerd.sock")
	const pause = "bw-outages/pause:test"
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/%[4]s"
  restrict_oom_score_adj = true
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), socket, pause)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	ctr := func(args ...string) *exec.Cmd {
		return exec.Command("ctr", append([]string{"--address", socket, "-n", testenv.CtrNamespace}, args...)...)
	}
	for deadline := time.Now().Add(10 * time.Second); ctr("version").Run() != nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("private containerd did not come up:\n%s", b)
		}
	}
	script := `set -e
c=$(docker create ` + testenv.Image + `)
docker export "$c" | docker import -c 'CMD ["/bin/sleep","86400"]' - ` + pause + ` >/dev/null
docker rm "$c" >/dev/null
docker save ` + testenv.Image + ` ` + pause + ` | ctr --address ` + socket + ` -n ` + testenv.CtrNamespace + ` images import -
docker rmi ` + pause + ` >/dev/null`
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("importing the images: %v\n%s", err, out)
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return socket, "docker.io/" + testenv.Image, criapi.NewRuntimeServiceClient(conn)
}

// TestResolveThroughCRI names a pod's container and its sandbox through the
// CRI API alone, against containerd's CRI plugin: what a CRI-O node gets.
// Docker and containerd's own API are out of reach of this resolver.
func TestResolveThroughCRI(t *testing.T) {
	socket, ref, rt := criRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	uid := testenv.NewID(t)[:32]
	parent := "/bw-outages-pod" + uid
	sbConfig := &criapi.PodSandboxConfig{
		Metadata:     &criapi.PodSandboxMetadata{Name: "bw-outages-pod", Namespace: "bw-outages", Uid: uid},
		LogDirectory: t.TempDir(),
		Linux: &criapi.LinuxPodSandboxConfig{
			CgroupParent: parent,
			SecurityContext: &criapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &criapi.NamespaceOption{Network: criapi.NamespaceMode_NODE},
			},
		},
	}
	sb, err := rt.RunPodSandbox(ctx, &criapi.RunPodSandboxRequest{Config: sbConfig})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	sandbox := sb.GetPodSandboxId()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = rt.StopPodSandbox(ctx, &criapi.StopPodSandboxRequest{PodSandboxId: sandbox})
		if _, err := rt.RemovePodSandbox(ctx, &criapi.RemovePodSandboxRequest{PodSandboxId: sandbox}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
		for _, d := range append(dirs, "/sys/fs/cgroup"+parent) {
			_ = os.Remove(d)
		}
	})
	c, err := rt.CreateContainer(ctx, &criapi.CreateContainerRequest{
		PodSandboxId: sandbox,
		Config: &criapi.ContainerConfig{
			Metadata: &criapi.ContainerMetadata{Name: "app"},
			Image:    &criapi.ImageSpec{Image: ref},
			Command:  []string{"sleep", "300"},
			// What kubelet labels every container with.
			Labels: map[string]string{LabelPodNamespace: "bw-outages", LabelPodName: "bw-outages-pod", LabelContainerName: "app"},
		},
		SandboxConfig: sbConfig,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}

	dir := t.TempDir()
	r := NewResolver(nil, Options{DockerHost: "unix://" + filepath.Join(dir, "no-docker.sock"),
		CRIEndpoint: filepath.Join(dir, "no-containerd.sock"), CRISocket: socket})
	for _, tc := range []struct {
		id   string
		want Identity
	}{
		{c.GetContainerId(), Identity{ContainerID: c.GetContainerId(), Name: "app", Image: ref, Namespace: "bw-outages", Pod: "bw-outages-pod", Container: "app"}},
		{sandbox, Identity{ContainerID: sandbox, Namespace: "bw-outages", Pod: "bw-outages-pod", Sandbox: true}},
	} {
		if got, p := r.Lookup(ctx, tc.id); got != tc.want || p != Present {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v, present", tc.id[:12], got, p, tc.want)
		}
	}
	if got, p := r.Lookup(ctx, randomID(t)); p != Unanswered || got.Name != "" {
		// Docker and containerd's own API are down here: not "absent".
		t.Errorf("Lookup(unknown) = %+v, %v; want unanswered", got, p)
	}
	if got := r.Reach(ctx)[CRI]; !strings.Contains(got, "reached at "+socket) || !strings.Contains(got, "containerd") {
		t.Errorf("Reach[cri] = %q", got)
	}
}
