package identity

import (
	"strings"
	"testing"
)

const (
	idA = "4c5d3a6f0e8b4d1f9a2c7e6b5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c"
	idB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pod = "0f7c5b8e-2d4a-4c1b-9e6f-3a2b1c0d9e8f"
)

func TestContainerIDFromCgroupPath(t *testing.T) {
	podSystemd := strings.ReplaceAll(pod, "-", "_")
	for _, tc := range []struct {
		name, path, want string
	}{
		{"docker cgroupfs", "/docker/" + idA, idA},
		{"docker cgroupfs sub-cgroup", "/docker/" + idA + "/init.scope", idA},
		{"docker in docker is the inner one", "/docker/" + idA + "/docker/" + idB, idB},
		{"docker systemd", "/system.slice/docker-" + idA + ".scope", idA},
		{"containerd cri systemd", "/system.slice/cri-containerd-" + idA + ".scope", idA},
		{"crio systemd", "/machine.slice/crio-" + idA + ".scope", idA},
		{"crio cgroupfs", "/kubepods/burstable/pod" + pod + "/crio-" + idA, idA},
		{"podman", "/machine.slice/libpod-" + idA + ".scope", idA},
		{"kubepods cgroupfs", "/kubepods/burstable/pod" + pod + "/" + idA, idA},
		{"kubepods cgroupfs guaranteed", "/kubepods/pod" + pod + "/" + idA, idA},
		{"kubepods systemd containerd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podSystemd + ".slice/cri-containerd-" + idA + ".scope", idA},
		{"kubepods systemd docker", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podSystemd + ".slice/docker-" + idA + ".scope", idA},
		{"kubepods systemd crio", "/kubepods.slice/kubepods-pod" + podSystemd + ".slice/crio-" + idA + ".scope", idA},
		{"absolute path under the mount", "/sys/fs/cgroup/unified/docker/" + idA, idA},
		{"relative without leading slash", "docker/" + idA, idA},
		{"bare id", idA, idA},

		{"crio conmon is not the container", "/kubepods.slice/kubepods-pod" + podSystemd + ".slice/crio-conmon-" + idA + ".scope", ""},
		{"pod level cgroupfs", "/kubepods/burstable/pod" + pod, ""},
		{"pod level systemd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podSystemd + ".slice", ""},
		{"qos level", "/kubepods/burstable", ""},
		{"root", "/", ""},
		{"empty", "", ""},
		{"docker parent", "/docker", ""},
		{"host service", "/system.slice/docker.service", ""},
		{"containerd service", "/system.slice/containerd.service", ""},
		{"user session", "/user.slice/user-0.slice/session-1.scope", ""},
		{"overlay mount unit", "/system.slice/var-lib-docker-overlay2-" + idA + "-merged.mount", ""},
		{"uppercase hex", "/docker/" + strings.ToUpper(idA), ""},
		{"63 hex", "/docker/" + idA[:63], ""},
		{"65 hex", "/docker/" + idA + "0", ""},
		{"scope with suffix", "/system.slice/docker-" + idA + ".scope.bak", ""},
		{"unknown runtime prefix", "/system.slice/foo-" + idA + ".scope", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ContainerIDFromCgroupPath(tc.path)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("ContainerIDFromCgroupPath(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.want != "")
			}
		})
	}
}

func TestContainerRootFromCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		path, root, id string
	}{
		{"/docker/" + idA, "/docker/" + idA, idA},
		{"/docker/" + idA + "/init.scope", "/docker/" + idA, idA},
		{"/docker/" + idA + "/docker/" + idB, "/docker/" + idA, idA},
		{"/kubepods/burstable/pod" + pod + "/" + idA + "/sub", "/kubepods/burstable/pod" + pod + "/" + idA, idA},
		{"/system.slice/docker-" + idA + ".scope/x", "/system.slice/docker-" + idA + ".scope", idA},
		{"/kubepods/burstable/pod" + pod, "", ""},
		{"", "", ""},
	} {
		root, id, ok := ContainerRootFromCgroupPath(tc.path)
		if root != tc.root || id != tc.id || ok != (tc.id != "") {
			t.Errorf("ContainerRootFromCgroupPath(%q) = %q, %q, %v; want %q, %q", tc.path, root, id, ok, tc.root, tc.id)
		}
	}
}

func FuzzContainerIDFromCgroupPath(f *testing.F) {
	for _, s := range []string{
		"/docker/" + idA,
		"/system.slice/docker-" + idA + ".scope",
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + pod + ".slice/cri-containerd-" + idA + ".scope",
		"/kubepods/burstable/pod" + pod + "/" + idA,
		"crio-conmon-" + idA + ".scope",
		"", "/", "//", ".scope", "docker-.scope",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		id, ok := ContainerIDFromCgroupPath(path)
		if ok != (id != "") {
			t.Fatalf("ok=%v with id %q", ok, id)
		}
		if ok && !isContainerID(id) {
			t.Fatalf("id %q is not 64 lowercase hex", id)
		}
		if ok && !strings.Contains(path, id) {
			t.Fatalf("id %q is not in the path %q", id, path)
		}
	})
}

func TestUnifiedRootFrom(t *testing.T) {
	const (
		tmpfs  = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
		v1cpu  = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
		hybrid = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
		pure   = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
		sub    = "50 23 0:26 /docker/x /mnt/sub rw,relatime - cgroup2 cgroup2 rw\n"
		procfs = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
	)
	for _, tc := range []struct {
		name, mountinfo, want string
		wantErr               bool
	}{
		{"hybrid", procfs + tmpfs + v1cpu + hybrid, "/sys/fs/cgroup/unified", false},
		{"pure v2", procfs + pure, "/sys/fs/cgroup", false},
		{"whole hierarchy preferred over a subtree", procfs + sub + pure, "/sys/fs/cgroup", false},
		{"only a subtree", procfs + sub, "/mnt/sub", false},
		{"v1 only", procfs + tmpfs + v1cpu, "", true},
		{"nothing", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := unifiedRootFrom(strings.NewReader(tc.mountinfo))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("unifiedRootFrom = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
