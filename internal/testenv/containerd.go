package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// Containerd is how tests start containers the way kubelet's CRI plugin
// does, through containerd alone (no Docker): in namespace k8s.io, with the
// CRI labels and a kubepods cgroup, driven by ctr, containerd's own client
// of its API.
const (
	CtrSocket    = "/run/containerd/containerd.sock"
	CtrNamespace = "k8s.io"
)

var (
	ctrImageOnce sync.Once
	ctrImageRef  string
	ctrImageErr  error
	// kubepodsOwned: the kubepods cgroups did not exist before the first
	// CtrRun, so the tests made them and remove them.
	kubepodsOnce  sync.Once
	kubepodsOwned bool
)

// CtrImage makes the test image known to containerd's k8s.io namespace
// (imported from Docker, no registry) and returns its reference there.
func CtrImage(t testing.TB) string {
	t.Helper()
	Docker(t)
	ctrImageOnce.Do(func() {
		ctrImageRef = "docker.io/" + Image
		if exec.Command("ctr", ctrArgs("images", "check", "name=="+ctrImageRef)...).Run() == nil {
			out, _ := exec.Command("ctr", ctrArgs("images", "ls", "-q", "name=="+ctrImageRef)...).Output()
			if strings.TrimSpace(string(out)) == ctrImageRef {
				return
			}
		}
		cmd := exec.Command("sh", "-c", fmt.Sprintf("docker save %s | ctr --address %s -n %s images import -", Image, CtrSocket, CtrNamespace))
		if out, err := cmd.CombinedOutput(); err != nil {
			ctrImageErr = fmt.Errorf("importing %s into containerd: %v\n%s", Image, err, out)
		}
	})
	if ctrImageErr != nil {
		t.Fatal(ctrImageErr)
	}
	return ctrImageRef
}

func ctrArgs(args ...string) []string {
	return append([]string{"--address", CtrSocket, "-n", CtrNamespace}, args...)
}

// PodContainer is one container of a Kubernetes-style pod.
type PodContainer struct {
	Namespace, Pod, Container string
	PodUID                    string   // the pod's cgroup is kubepods/besteffort/pod<PodUID>
	Sandbox                   bool     // the pod's pause container
	Mounts                    []string // host:container, read-only
	Caps                      []string // added capabilities (CAP_...)
	Detach                    bool     // run in the background until the test ends
}

// NewID returns a random 64-hex container id.
func NewID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// CtrRun runs a pod container through containerd and returns its id and
// what it printed (nothing for a detached one). The container, its task
// and the pod's cgroups go when the test ends.
func CtrRun(t testing.TB, pc PodContainer, cmd ...string) (id, out string) {
	t.Helper()
	image := CtrImage(t)
	kubepodsOnce.Do(func() {
		_, err := os.Stat("/sys/fs/cgroup/unified/kubepods")
		_, err2 := os.Stat("/sys/fs/cgroup/kubepods")
		kubepodsOwned = os.IsNotExist(err) && os.IsNotExist(err2)
	})
	id = NewID(t)
	cgroup := fmt.Sprintf("/kubepods/besteffort/pod%s/%s", pc.PodUID, id)
	args := []string{"run", "--cgroup", cgroup,
		"--label", "io.kubernetes.pod.namespace=" + pc.Namespace,
		"--label", "io.kubernetes.pod.name=" + pc.Pod,
		"--label", "io.kubernetes.container.name=" + pc.Container,
		"--label", "io.kubernetes.pod.uid=" + pc.PodUID}
	if pc.Sandbox {
		args = append(args, "--label", "io.cri-containerd.kind=sandbox")
	} else {
		args = append(args, "--label", "io.cri-containerd.kind=container")
	}
	for _, m := range pc.Mounts {
		host, ctr, _ := strings.Cut(m, ":")
		args = append(args, "--mount", "type=bind,src="+host+",dst="+ctr+",options=rbind:ro")
	}
	for _, c := range pc.Caps {
		args = append(args, "--cap-add", c)
	}
	if pc.Detach {
		args = append(args, "-d")
	}
	args = append(append(args, image, id), cmd...)
	t.Cleanup(func() { CtrRemove(id); removePodCgroups(pc.PodUID) })
	b, err := exec.Command("ctr", ctrArgs(args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return id, strings.TrimSpace(string(b))
}

// CtrRemove kills and deletes a containerd container, if it still exists.
func CtrRemove(id string) {
	_ = exec.Command("ctr", ctrArgs("task", "kill", "-s", "SIGKILL", id)...).Run()
	_ = exec.Command("ctr", ctrArgs("task", "delete", "-f", id)...).Run()
	_ = exec.Command("ctr", ctrArgs("container", "delete", id)...).Run()
}

// removePodCgroups removes the pod's cgroup directories runc made for
// CtrRun in every hierarchy, and kubepods/besteffort and kubepods when
// nothing else is left in them. Only empty directories go.
func removePodCgroups(podUID string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		dirs := []string{"kubepods/besteffort/pod" + podUID}
		if kubepodsOwned {
			dirs = append(dirs, "kubepods/besteffort", "kubepods")
		}
		for _, dir := range dirs {
			_ = os.Remove(filepath.Join(root, dir)) // fails, harmlessly, while not empty
		}
	}
}

// StopContainerd stops the shared containerd that scripts/docker-up.sh
// started (the process named containerd with no arguments) with SIGTERM
// and waits for it to exit; running containers keep their shims. Only
// tests under the exclusive machine lock and
// $BREAKWATER_TEST_ENGINE_RESTART=1 may call it.
func StopContainerd(t testing.TB) {
	t.Helper()
	pid := 0
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && string(b) == "containerd\x00" {
			pid, _ = strconv.Atoi(d.Name())
		}
	}
	if pid == 0 {
		t.Fatal("no containerd started by scripts/docker-up.sh runs")
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping containerd %d: %v", pid, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd %d did not stop", pid)
		}
	}
}
