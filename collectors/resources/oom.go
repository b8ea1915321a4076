package resources

import (
	"fmt"
	"path/filepath"

	"github.com/google/cadvisor/info/v1"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
)

// oomKills reads the kernel's own count of processes its OOM killer killed
// in a container's memory cgroup: oom_kill in memory.events (cgroup v2) or
// in memory.oom_control (v1). cAdvisor counts OOM kills from /dev/kmsg
// instead, which needs CAP_SYSLOG and whose reader (go-kmsg-parser v2)
// stops for good at the first overrun of the kernel's log buffer; the
// cgroup's counter needs neither and cannot miss a kill.
type oomKills struct {
	root  string // where cAdvisor's container names are relative to
	count func(dir string) (uint64, error)
}

func newOOMKills() (*oomKills, error) {
	if cgroups.IsCgroup2UnifiedMode() {
		return &oomKills{root: "/sys/fs/cgroup", count: fs2.OOMKillCount}, nil
	}
	mnt, err := cgroups.FindCgroupMountpoint("", "memory")
	if err != nil {
		return nil, fmt.Errorf("no cgroup v1 memory controller mounted: %w", err)
	}
	return &oomKills{root: mnt, count: fs.OOMKillCount}, nil
}

// apply sets the OOM kill count of each container's latest stats to the
// kernel's. The stats are cAdvisor's cached ones: a copy is changed.
func (o *oomKills) apply(infos map[string]*v1.ContainerInfo) {
	for name, ci := range infos {
		n := len(ci.Stats)
		if n == 0 || ci.Stats[n-1] == nil {
			continue
		}
		kills, err := o.count(filepath.Join(o.root, name))
		if err != nil {
			continue // the cgroup is gone between cAdvisor's read and ours
		}
		latest := *ci.Stats[n-1]
		latest.OOMEvents = kills
		ci.Stats = append(ci.Stats[:n-1:n-1], &latest)
	}
}
