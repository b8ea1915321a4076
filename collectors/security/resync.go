package security

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/exporter/identity"
)

// resync rescans the unified hierarchy and repairs what lost ring-buffer
// records missed: containers the kernel does not track yet are tracked,
// containers whose cgroup is gone are marked removed, cgroups the kernel
// tracks that exist nowhere are swept, and container-looking cgroups no
// runtime knows are evicted. It also refreshes who the runtimes are.
func (c *Collector) resync(ctx context.Context) {
	found, err := identity.ContainerCgroups(c.root)
	if err != nil {
		c.logger.Error("scanning cgroups", "root", c.root, "err", err)
		return
	}
	tracked, err := c.probe.Tracked()
	if err != nil {
		c.logger.Error("listing tracked cgroups", "err", err)
		return
	}
	now := time.Now()
	byPath := map[string]uint64{}
	present := map[uint64]bool{}
	for _, cg := range found {
		byPath[cg.Path] = cg.ID
		present[cg.ID] = true
	}
	for _, cg := range found {
		rootPath, cid, ok := identity.ContainerRootFromCgroupPath(cg.Path)
		rootID, found := byPath[rootPath]
		if !ok || !found {
			continue // its container's cgroup went while we walked
		}
		if rec, ok := tracked[cg.ID]; ok && rec.Container != rootID {
			continue // the kernel saw who made it: a container's sub-cgroup, wherever it is
		}
		if cg.ID == rootID {
			c.addContainer(cg.ID, cg.Path, cid, now, tracked)
		} else if _, ok := tracked[cg.ID]; !ok && c.containers.has(rootID) {
			if err := c.probe.TrackSub(cg.ID, rootID); err != nil {
				c.logger.Error("tracking sub-cgroup", "path", cg.Path, "err", err)
			}
		}
	}
	for id := range c.containers.snapshot() {
		if !present[id] {
			c.containers.remove(id, now)
			_ = c.probe.Untrack(id)
		}
	}
	c.sweepStray(present, tracked)
	c.evictLookalikes(ctx, now)
	c.refreshRuntimes()
	for id := range c.containers.snapshot() {
		_, _ = c.containers.identity(ctx, id) // warm the identity while the container exists
	}
}

// addContainer starts counting a container found by event or by scan.
func (c *Collector) addContainer(id uint64, path, cid string, now time.Time, tracked map[uint64]bpf.CgroupRec) {
	if !c.containers.add(id, path, cid, now) {
		c.logger.Warn("container limit reached; not counting this container", "container_id", cid, "max", c.cfg.MaxContainers)
		_ = c.probe.Untrack(id)
		_ = c.probe.Forget(id)
		return
	}
	if _, ok := tracked[id]; ok {
		return
	}
	if err := c.probe.TrackContainer(id); err != nil {
		c.logger.Error("tracking container cgroup", "path", path, "err", err)
	}
}

// sweepStray drops what the kernel tracks of cgroups that neither exist nor
// are known to user space, as when their records were lost. An entry goes
// only when two scans in a row missed it: one the kernel added at a mkdir
// after this scan, whose record is still on its way, stays.
func (c *Collector) sweepStray(present map[uint64]bool, tracked map[uint64]bpf.CgroupRec) {
	known := c.containers.all()
	ids, err := c.probe.ContainerIDs()
	if err != nil {
		c.logger.Error("listing containers", "err", err)
		return
	}
	stray := map[uint64]bool{}
	for _, id := range ids {
		if id == 0 || known[id] || present[id] {
			continue // the host's own counters, or a container user space knows
		}
		if c.strayBefore[id] {
			_ = c.probe.Forget(id)
			continue
		}
		stray[id] = true
	}
	for id, rec := range tracked {
		// A live container's sub-cgroups stay until the kernel sees them
		// go; they may sit anywhere in the hierarchy.
		if present[id] || c.containers.has(rec.Container) {
			continue
		}
		if c.strayBefore[id] {
			_ = c.probe.Untrack(id)
			continue
		}
		stray[id] = true
	}
	c.strayBefore = stray
}

// authority names the runtimes whose answer decides whether a cgroup path
// is a real container: the one whose layout the path is in. Layouts of
// runtimes breakwater cannot ask (CRI-O, podman, anything else) are never
// evicted.
func authority(path string) []identity.Runtime {
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(base, "docker-") || strings.HasPrefix(path, "/docker/"):
		return []identity.Runtime{identity.Docker}
	case strings.HasPrefix(base, "cri-containerd-"):
		return []identity.Runtime{identity.Containerd}
	case strings.Contains(path, "/kubepods") && !strings.Contains(base, "-"):
		return []identity.Runtime{identity.Docker, identity.Containerd}
	}
	return nil
}

// evictLookalikes forgets containers older than the grace period whose
// runtime, asked, does not know them: directories that merely look like
// container cgroups must not hold the places of real containers.
func (c *Collector) evictLookalikes(ctx context.Context, now time.Time) {
	if c.resolver == nil {
		return
	}
	for id, ct := range c.containers.snapshot() {
		if ct.ident.Name != "" || now.Sub(ct.seen) < c.cfg.LookalikeGrace {
			continue
		}
		runtimes := authority(ct.path)
		if len(runtimes) == 0 || c.resolver.PresenceIn(ctx, ct.containerID, runtimes...) != identity.Absent {
			continue
		}
		// Found again at every resync while the directory stays: once per path.
		c.lookalikes.Warn(now, ct.path, "path", ct.path, "container_id", ct.containerID)
		c.containers.evict(id)
		if err := c.probe.Forget(id); err != nil {
			c.logger.Error("dropping look-alike cgroup", "path", ct.path, "err", err)
		}
	}
}

// wellKnownSockets are where container runtimes put their API sockets.
var wellKnownSockets = []string{
	"/var/run/docker.sock", "/run/docker.sock",
	"/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock.ttrpc",
	"/run/docker/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock",
	"/run/crio/crio.sock", "/var/run/crio/crio.sock",
	"/run/podman/podman.sock", "/var/run/podman/podman.sock",
	"/run/cri-dockerd.sock", "/var/run/cri-dockerd.sock", "/var/run/dockershim.sock",
}

// runtimeProcesses are the names of container runtime daemons and shims,
// host processes whose sockets are runtime APIs whatever they are called.
var runtimeProcesses = map[string]bool{
	"dockerd": true, "containerd": true, "containerd-shim": true, "containerd-shim-runc-v2": true,
	"containerd-shim-runc-v1": true, "crio": true, "conmon": true, "podman": true, "cri-dockerd": true,
}

// refreshRuntimes tells the kernel which sockets and processes are the
// container runtimes': a connect to them is a runtime_socket attempt, by
// whatever path, link or mount the container reached them.
func (c *Collector) refreshRuntimes() {
	paths := append(append([]string{}, wellKnownSockets...), c.cfg.RuntimeSockets...)
	if c.resolver != nil {
		paths = append(paths, c.resolver.Sockets()...)
	}
	for _, pattern := range []string{"/run/containerd/s/*", "/run/user/*/podman/podman.sock", "/run/user/*/docker.sock"} {
		m, _ := filepath.Glob(pattern)
		paths = append(paths, m...)
	}
	var ids []bpf.SockID
	seen := map[bpf.SockID]bool{}
	for _, p := range paths {
		if id, err := bpf.RuntimeSocket(p); err == nil && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := c.probe.SetRuntimeSockets(ids); err != nil {
		c.logger.Error("setting runtime sockets", "err", err)
	}
	if err := c.probe.SetRuntimePIDs(runtimePIDs()); err != nil {
		c.logger.Error("setting runtime processes", "err", err)
	}
}

// runtimePIDs lists host processes named like a runtime daemon or shim.
// A process inside a container is never one, whatever it calls itself.
func runtimePIDs() []uint32 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []uint32
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || !runtimeProcesses[strings.TrimSpace(string(comm))] {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil || inContainer(string(cg)) {
			continue
		}
		out = append(out, uint32(pid))
	}
	return out
}

func inContainer(procCgroup string) bool {
	for _, line := range strings.Split(procCgroup, "\n") {
		if i := strings.LastIndexByte(line, ':'); i >= 0 {
			if _, ok := identity.ContainerIDFromCgroupPath(line[i+1:]); ok {
				return true
			}
		}
	}
	return false
}
