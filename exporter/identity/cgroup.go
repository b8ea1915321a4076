package identity

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// ContainerIDFromCgroupPath returns the 64-hex id of the innermost container
// whose cgroup holds path. It understands Docker's cgroupfs (/docker/<id>)
// and systemd (docker-<id>.scope) layouts, containerd's and CRI-O's CRI scopes
// (cri-containerd-<id>.scope, crio-<id>.scope) and kubelet's kubepods nesting
// under both cgroup drivers. Sub-cgroups a container makes below its own
// belong to that container. Pod-level and host cgroups give ok == false.
func ContainerIDFromCgroupPath(path string) (id string, ok bool) {
	// Innermost first: Docker in Docker nests /docker/<outer>/docker/<inner>.
	for path != "" {
		i := strings.LastIndexByte(path, '/')
		if id, ok := containerIDFromComponent(path[i+1:]); ok {
			return id, true
		}
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return "", false
}

// ContainerRootFromCgroupPath returns the cgroup of the outermost container
// whose cgroup holds path, and that container's id: what the kernel side
// attributes a cgroup to, since a cgroup made inside a container (Docker in
// Docker included) belongs to that container.
func ContainerRootFromCgroupPath(path string) (root, id string, ok bool) {
	for i := 0; i <= len(path); {
		j := strings.IndexByte(path[i:], '/')
		end := len(path)
		if j >= 0 {
			end = i + j
		}
		if id, ok := containerIDFromComponent(path[i:end]); ok {
			return path[:end], id, true
		}
		if j < 0 {
			break
		}
		i = end + 1
	}
	return "", "", false
}

// scopePrefixes are the runtimes' names for a container's own cgroup under
// the systemd driver (with ".scope") and, for CRI-O, under cgroupfs
// (without). crio-conmon-<id> is CRI-O's monitor, not the container.
var scopePrefixes = []string{"docker-", "cri-containerd-", "crio-", "libpod-"}

func containerIDFromComponent(c string) (string, bool) {
	if isContainerID(c) {
		return c, true // cgroupfs: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>
	}
	c = strings.TrimSuffix(c, ".scope")
	for _, p := range scopePrefixes {
		if rest, found := strings.CutPrefix(c, p); found && isContainerID(rest) {
			return rest, true
		}
	}
	return "", false
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// UnifiedRoot returns where the cgroup v2 hierarchy is mounted:
// /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on the v1+v2
// hybrid. That hierarchy is the one bpf_get_current_cgroup_id() reports on.
func UnifiedRoot() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("identity: finding the cgroup v2 mount: %w", err)
	}
	defer f.Close()
	return unifiedRootFrom(f)
}

func unifiedRootFrom(r io.Reader) (string, error) {
	mounts, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup2"))
	if err != nil {
		return "", fmt.Errorf("identity: reading mountinfo: %w", err)
	}
	// Prefer a mount of the whole hierarchy; a bind mount of a subtree (Root
	// other than "/") would give paths that do not match cgroup_mkdir's.
	for _, m := range mounts {
		if m.Root == "/" {
			return m.Mountpoint, nil
		}
	}
	if len(mounts) > 0 {
		return mounts[0].Mountpoint, nil
	}
	return "", errors.New("identity: no cgroup2 (unified) hierarchy is mounted; container attribution needs cgroup v2 or the v1+v2 hybrid")
}

// Cgroup is one cgroup of the unified hierarchy.
type Cgroup struct {
	ID   uint64 // what bpf_get_current_cgroup_id() returns for its tasks
	Path string // relative to the unified root, with a leading slash, as cgroup_mkdir reports it
}

// CgroupID returns the id of the cgroup at root+path: on cgroup v2 that is
// the kernfs inode number of its directory.
func CgroupID(root, path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, path), &st); err != nil {
		return 0, fmt.Errorf("identity: cgroup id of %s: %w", path, err)
	}
	return st.Ino, nil
}

// ContainerCgroups walks the unified hierarchy under root and returns every
// cgroup that belongs to a container: the container's own cgroup and any
// sub-cgroup below it. ContainerIDFromCgroupPath(c.Path) names the innermost
// container of each. Cgroups that vanish during the walk are skipped.
func ContainerCgroups(root string) ([]Cgroup, error) {
	root = filepath.Clean(root)
	var out []Cgroup
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != root {
				return nil // removed while we walked
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if _, ok := ContainerIDFromCgroupPath(rel); !ok {
			return nil
		}
		id, err := CgroupID(root, rel)
		if err != nil {
			return nil // removed between readdir and stat
		}
		out = append(out, Cgroup{ID: id, Path: rel})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("identity: walking %s: %w", root, err)
	}
	return out, nil
}
