package validate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/breakwater/breakwater/internal/testenv"
)

// TestDaemonSetInAContainer runs breakwater the way the DaemonSet runs it:
// the image deploy/compose/Dockerfile builds (assembled here from a rootfs,
// since no registry is reachable), started by runc, the runtime kubelet's
// containerd drives, from an OCI spec made of exactly the DaemonSet's
// security context, hostPID, mounts, args and limits. Anything in the
// manifest this translation does not know fails the test, so the two cannot
// drift. Neighbour pods run through containerd alone. It shows: no series
// and no log line about breakwater's own container, identity labels of the
// neighbours through the mounted containerd socket, every escape technique
// counted for a neighbour, and SIGTERM detaching every program.
func TestDaemonSetInAContainer(t *testing.T) {
	testenv.Docker(t)
	ds := must(Only[*appsv1.DaemonSet](plainObjects(t)))(t)
	addr := testenv.FreeAddr(t)
	bundle, id := daemonSetBundle(t, ds, addr)

	logPath := filepath.Join(t.TempDir(), "breakwater.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	run := exec.Command("runc", "run", "-d", "--bundle", bundle, "--pid-file", filepath.Join(bundle, "pid"), id)
	run.Stdout, run.Stderr = logFile, logFile
	if err := run.Run(); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("runc run: %v\n%s", err, b)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = exec.Command("runc", "kill", id, "KILL").Run()
			time.Sleep(time.Second)
		}
		_ = exec.Command("runc", "delete", "-f", id).Run()
		removeCgroups(t, cgroupsPathOf(bundle))
	})
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	pidBytes, err := os.ReadFile(filepath.Join(bundle, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidBytes)))

	body := ""
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		body = scrape(addr)
		if sample(body, "breakwater_scrape_collector_success", `collector="security"`) == 1 {
			break
		}
	}
	if sample(body, "breakwater_scrape_collector_success", `collector="security"`) != 1 {
		t.Fatalf("the security collector does not run in the DaemonSet's container\n%s", logs())
	}
	held := testenv.LinkedPrograms(t, pid)
	t.Logf("breakwater runs as pid %d in container %s, holding %d BPF links", pid, id[:12], len(held))

	// Neighbour pods, through containerd alone: one that idles (names),
	// and one attempt of each technique.
	attempt := attemptBinary(t)
	pod := testenv.PodContainer{Namespace: "bw-validate", Pod: "neighbour-0", Container: "app", PodUID: fmt.Sprintf("%d-ds", os.Getpid()),
		Mounts: []string{attempt + ":/attempt"}}
	idle := pod
	idle.Detach = true
	idleID, _ := testenv.CtrRun(t, idle, "sleep", "300")
	techniques := []string{"mount", "namespace", "pivot_root", "ptrace", "kernel_module", "kernel_interface",
		"cgroup_release_agent", "proc_sys_write", "runtime_socket", "block_device"}
	want := map[string]string{}
	for i, tech := range techniques {
		p := pod
		p.Pod, p.Container = fmt.Sprintf("neighbour-%d", i+1), "attempt"
		cid, out := testenv.CtrRun(t, p, "/attempt", tech)
		t.Logf("%s: %s", tech, out)
		want[cid] = map[string]string{"pivot_root": "chroot"}[tech]
		if want[cid] == "" {
			want[cid] = tech
		}
	}

	time.Sleep(2 * time.Second)
	body = scrape(addr)
	if got := sample(body, "breakwater_container_capabilities", `container_id="`+idleID+`"`); got > 0 {
		t.Errorf("an ordinary neighbour holds dangerous capabilities: %v", got)
	}
	for cid, tech := range want {
		if got := sample(body, "breakwater_escape_attempts_total", `container_id="`+cid+`"`, `technique="`+tech+`"`, `result="blocked"`,
			`namespace="bw-validate"`, `container="attempt"`); got != 1 {
			t.Errorf("%s attempt of neighbour %s: %v, want 1 under its pod's labels", tech, cid[:12], got)
		}
	}
	if sample(body, "container_memory_working_set_bytes", `container_id="`+idleID+`"`, `namespace="bw-validate"`, `pod="neighbour-0"`, `container="app"`) <= 0 {
		t.Error("the idle neighbour's resource series lack its pod's labels")
	}

	// Nothing about breakwater's own container: not a series, not a line.
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "breakwater_") && strings.Contains(line, id) {
			t.Errorf("a series about breakwater's own container: %s", strings.TrimSpace(line))
		}
	}
	if strings.Contains(logs(), id) {
		t.Errorf("the log speaks of breakwater's own container %s:\n%s", id, logs())
	}

	// SIGTERM, as kubelet stops a pod: every program detached.
	if out, err := exec.Command("runc", "kill", id, "TERM").CombinedOutput(); err != nil {
		t.Fatalf("runc kill: %v %s", err, out)
	}
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			stopped = true
			break
		}
	}
	if !stopped {
		t.Fatalf("breakwater did not stop on SIGTERM\n%s", logs())
	}
	if left := testenv.StillLoaded(t, held); len(left) > 0 {
		t.Errorf("programs %v still loaded after SIGTERM", left)
	}
	if !strings.Contains(logs(), "BPF programs detached") {
		t.Errorf("no clean shutdown in the log:\n%s", logs())
	}
}

// daemonSetBundle makes an OCI bundle of the DaemonSet's container: the
// image's rootfs and a spec with the DaemonSet's process, security
// context, namespaces, mounts and limits. The one thing not reproduced is
// the pod network: there is no CNI here, so the container shares the host's
// network and listens on addr.
func daemonSetBundle(t *testing.T, ds *appsv1.DaemonSet, addr string) (bundle, id string) {
	t.Helper()
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 || len(spec.InitContainers) > 0 || spec.HostNetwork || spec.HostIPC || spec.ShareProcessNamespace != nil {
		t.Fatalf("the DaemonSet's pod has a shape this test does not reproduce: %d containers, init containers %d, hostNetwork %v, hostIPC %v",
			len(spec.Containers), len(spec.InitContainers), spec.HostNetwork, spec.HostIPC)
	}
	c := spec.Containers[0]
	if len(c.Env) > 0 || len(c.EnvFrom) > 0 || len(c.VolumeDevices) > 0 || c.Lifecycle != nil || len(c.Command) > 0 || c.WorkingDir != "" {
		t.Fatal("the DaemonSet's container uses fields this test does not reproduce (env, devices, lifecycle, command, workingDir)")
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil || sc.SELinuxOptions != nil || sc.AppArmorProfile != nil || sc.ProcMount != nil || sc.WindowsOptions != nil {
		t.Fatal("the DaemonSet's container security context uses fields this test does not reproduce")
	}

	bundle = t.TempDir()
	id = testenv.NewID(t)
	rootfs := filepath.Join(bundle, "rootfs")
	entrypoint := imageRootfs(t, rootfs)

	out, err := exec.Command("runc", "spec", "--bundle", bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("runc spec: %v %s", err, out)
	}
	var oci map[string]any
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err := json.Unmarshal(b, &oci); err != nil {
		t.Fatal(err)
	}
	process := oci["process"].(map[string]any)
	linux := oci["linux"].(map[string]any)

	args := append([]string{}, entrypoint...)
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--web.listen-address=") {
			a = "--web.listen-address=" + addr
		}
		args = append(args, a)
	}
	process["args"] = args
	process["terminal"] = false
	uid, gid := int64(0), int64(0)
	if sc.RunAsUser != nil {
		uid = *sc.RunAsUser
	}
	if sc.RunAsGroup != nil {
		gid = *sc.RunAsGroup
	}
	process["user"] = map[string]any{"uid": uid, "gid": gid}
	process["noNewPrivileges"] = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Fatalf("the DaemonSet drops %v; this test reproduces drop [ALL] with an added set", sc.Capabilities.Drop)
	}
	held := boundingSet(t)
	var caps []string
	for _, cp := range sc.Capabilities.Add {
		if !held[strings.ToLower(string(cp))] {
			t.Logf("capability %s is not in this machine's bounding set; running without it", cp)
			continue
		}
		caps = append(caps, "CAP_"+string(cp))
	}
	process["capabilities"] = map[string]any{"bounding": caps, "effective": caps, "permitted": caps}
	if sc.Privileged != nil && *sc.Privileged {
		t.Fatal("the DaemonSet's container is privileged; this test reproduces an unprivileged one")
	}
	oci["root"].(map[string]any)["readonly"] = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	oci["hostname"] = "breakwater"

	// Namespaces: hostPID shares the host's PID namespace; the network is
	// the host's (see above).
	var namespaces []any
	for _, n := range linux["namespaces"].([]any) {
		switch n.(map[string]any)["type"] {
		case "pid":
			if spec.HostPID {
				continue
			}
		case "network":
			continue
		}
		namespaces = append(namespaces, n)
	}
	linux["namespaces"] = namespaces
	linux["cgroupsPath"] = fmt.Sprintf("/kubepods/burstable/pod%d-bw/%s", os.Getpid(), id)

	// Seccomp: RuntimeDefault would be containerd's profile; Unconfined (or
	// none) is none.
	profile := spec.SecurityContext.SeccompProfile
	if sc.SeccompProfile != nil {
		profile = sc.SeccompProfile
	}
	if profile != nil && profile.Type != corev1.SeccompProfileTypeUnconfined {
		t.Fatalf("seccomp profile %s: this test reproduces Unconfined only (docs/deploy.md says why breakwater runs without one)", profile.Type)
	}
	delete(linux, "seccomp")

	// Mounts: each volume mount of a host path becomes a bind mount.
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	mounts := oci["mounts"].([]any)
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		if v.HostPath == nil || m.SubPath != "" {
			t.Fatalf("volume %s is not a plain host path: this test reproduces host paths only", m.Name)
		}
		opts := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		if v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathDirectoryOrCreate {
			if err := os.MkdirAll(v.HostPath.Path, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mounts = append(mounts, map[string]any{"destination": m.MountPath, "type": "bind", "source": v.HostPath.Path, "options": opts})
	}
	oci["mounts"] = mounts

	// Limits, as kubelet sets them.
	res := map[string]any{}
	if mem, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		res["memory"] = map[string]any{"limit": mem.Value()}
	}
	if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		res["cpu"] = map[string]any{"quota": cpu.MilliValue() * 100, "period": 100000}
	}
	linux["resources"] = res

	b, err = json.MarshalIndent(oci, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle, id
}

// imageRootfs assembles the rootfs deploy/compose/Dockerfile's final stage
// describes (FROM scratch, the static binary COPYd in, an ENTRYPOINT) and
// returns the entrypoint. Any other instruction in that stage fails the
// test: the image here must be the one users get.
func imageRootfs(t *testing.T, rootfs string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(t), "deploy", "compose", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var final []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			final = nil
		}
		final = append(final, line)
	}
	var entrypoint []string
	for _, line := range final {
		word, rest, _ := strings.Cut(line, " ")
		switch word {
		case "FROM":
			if rest != "scratch" {
				t.Fatalf("the image's final stage is FROM %s; this test assembles FROM scratch", rest)
			}
		case "COPY":
			fields := strings.Fields(rest)
			if len(fields) != 3 || !strings.HasPrefix(fields[0], "--from=") {
				t.Fatalf("COPY %s: this test reproduces one binary copied from the build stage", rest)
			}
			dst := filepath.Join(rootfs, fields[2])
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(exporterBinary(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o755); err != nil {
				t.Fatal(err)
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", rest, err)
			}
		case "EXPOSE", "USER":
		default:
			t.Fatalf("Dockerfile instruction %q in the final stage: this test does not reproduce it", line)
		}
	}
	if len(entrypoint) == 0 {
		t.Fatal("the image has no ENTRYPOINT")
	}
	return entrypoint
}

func cgroupsPathOf(bundle string) string {
	var oci struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	_ = json.Unmarshal(b, &oci)
	return oci.Linux.CgroupsPath
}

// removeCgroups removes the (empty) pod cgroup runc left above the
// container's, in every hierarchy; kubepods itself only if it is empty.
func removeCgroups(t *testing.T, path string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		for p := filepath.Dir(path); p != "/" && p != "."; p = filepath.Dir(p) {
			_ = os.Remove(filepath.Join(root, p))
		}
	}
}

// attemptBinary builds the escape attempt program of the security tests.
func attemptBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "attempt")
	src := filepath.Join(testenv.RepoRoot(t), "collectors", "security", "testdata", "attempt.c")
	if b, err := exec.Command("gcc", "-static", "-O2", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}
