package security

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/collectors"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/syscalls"
)

func desc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(collectors.Namespace+"_"+name, help, append(append([]string{}, identity.LabelNames...), extra...), nil)
}

var (
	deniedDesc = desc("syscalls_denied_total",
		"Syscalls by container processes that failed with EPERM or EACCES (seccomp, a missing capability or an LSM).", "syscall", "errno")
	namespaceDesc = desc("namespace_operations_total",
		"Namespace creation or entry from inside a container. The kind of Linux namespace is namespace_type: the identity label namespace is the Kubernetes namespace.", "operation", "namespace_type", "result")
	mountDesc = desc("mount_operations_total",
		"Mount-table and root changes from inside a container.", "operation", "result")
	capabilityDesc = desc("capability_checks_total",
		"Privileged operations attempted by a container, by the capability they need (see docs/security-metrics.md).", "capability", "result")
	capsDesc = desc("container_capabilities",
		"A dangerous capability was in the effective set of a process the container executed.", "capability")
	escapeDesc = desc("escape_attempts_total",
		"Classified container escape attempts; result=\"allowed\" means the kernel let the attempt succeed.", "technique", "result")

	attachedDesc = prometheus.NewDesc("breakwater_bpf_program_attached",
		"Whether a BPF program is attached to its hook (1) or not (0).", []string{"program", "hook"}, nil)
	lostDesc = prometheus.NewDesc("breakwater_bpf_events_lost_total",
		"Events the BPF side or the exporter could not record, by reason.", []string{"reason"}, nil)
	foldedDesc = prometheus.NewDesc("breakwater_bpf_events_folded_total",
		"Escape attempts not sent as events of their own, because the container made the same attempt with the same result less than --collector.security.event-interval before; the next event of that kind carries their count, the counters have them all.", nil, nil)
	trackedDesc = prometheus.NewDesc("breakwater_tracked_containers",
		"Containers whose cgroups are currently counted.", nil, nil)
	expiredDesc = prometheus.NewDesc("breakwater_series_expired_total",
		"Containers whose series were dropped after --collector.security.expiry.", nil, nil)
)

// dangerousCaps are the capabilities breakwater_container_capabilities
// reports: each lets a process reach past its container. Docker's default
// set (CHOWN, NET_RAW, MKNOD, SYS_CHROOT, ...) is deliberately not here, so
// that an ordinary container moves nothing.
var dangerousCaps = []struct {
	bit  uint
	name string
}{
	{unix.CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"},
	{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"},
	{unix.CAP_SYS_MODULE, "CAP_SYS_MODULE"},
	{unix.CAP_SYS_RAWIO, "CAP_SYS_RAWIO"},
	{unix.CAP_SYS_PTRACE, "CAP_SYS_PTRACE"},
	{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
	{unix.CAP_SYS_BOOT, "CAP_SYS_BOOT"},
	{unix.CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE"},
	{unix.CAP_SYS_TIME, "CAP_SYS_TIME"},
	{unix.CAP_MAC_OVERRIDE, "CAP_MAC_OVERRIDE"},
	{unix.CAP_MAC_ADMIN, "CAP_MAC_ADMIN"},
	{unix.CAP_SYSLOG, "CAP_SYSLOG"},
	{unix.CAP_BPF, "CAP_BPF"},
	{unix.CAP_PERFMON, "CAP_PERFMON"},
	{unix.CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE"},
}

// series accumulates counter values by full label set, because several
// cgroup ids (sub-cgroups, host cgroups) can map onto one identity.
type series map[string]float64

const sep = "\xff"

func (s series) add(ident identity.Identity, v float64, extra ...string) {
	s[strings.Join(append(ident.LabelValues(), extra...), sep)] += v
}

func (s series) emit(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType) {
	for k, v := range s {
		ch <- prometheus.MustNewConstMetric(d, t, v, strings.Split(k, sep)...)
	}
}

// Update reads the in-kernel counters and sends every security series.
func (c *Collector) Update(ch chan<- prometheus.Metric) error {
	c.sendHealth(ch)
	if c.probe == nil {
		return c.loadErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	counters, err := c.probe.Counters()
	if err != nil {
		return err
	}
	denied, ns, mounts, caps, escapes := series{}, series{}, series{}, series{}, series{}
	for _, ctr := range counters {
		ident, ok := c.identityOf(ctx, ctr.Key.CgroupId)
		if !ok {
			continue
		}
		v := float64(ctr.Value)
		name := syscalls.Name(uint32(ctr.Key.Nr))
		switch bpf.CounterKind(ctr.Key.Kind) {
		case bpf.KindDenied:
			denied.add(ident, v, name, errnoName(ctr.Key.Err))
		case bpf.KindOutcome:
			o, ok := derive(name, ctr.Key.Sub)
			if !ok {
				continue
			}
			allowed := ctr.Key.Err == 0
			result := pick(allowed, "allowed", "denied")
			if o.mountOp != "" {
				mounts.add(ident, v, o.mountOp, result)
			}
			for _, n := range o.nsOps {
				ns.add(ident, v, o.nsOp, n, result)
			}
			if o.capability != "" {
				if allowed {
					caps.add(ident, v, o.capability, "granted")
				} else if ctr.Key.Err == uint16(unix.EPERM) || ctr.Key.Err == uint16(unix.EACCES) {
					caps.add(ident, v, o.capability, "denied")
				}
			}
			if o.technique != "" {
				escapes.add(ident, v, o.technique, pick(allowed, "allowed", "blocked"))
			}
		}
	}
	denied.emit(ch, deniedDesc, prometheus.CounterValue)
	ns.emit(ch, namespaceDesc, prometheus.CounterValue)
	mounts.emit(ch, mountDesc, prometheus.CounterValue)
	caps.emit(ch, capabilityDesc, prometheus.CounterValue)
	escapes.emit(ch, escapeDesc, prometheus.CounterValue)

	execCaps, err := c.probe.ExecCaps()
	if err != nil {
		return err
	}
	held := series{}
	for id, mask := range execCaps {
		ident, ok := c.cgroups.identity(ctx, id)
		if !ok {
			continue
		}
		for _, dc := range dangerousCaps {
			if mask&(1<<dc.bit) != 0 {
				held[strings.Join(append(ident.LabelValues(), dc.name), sep)] = 1
			}
		}
	}
	held.emit(ch, capsDesc, prometheus.GaugeValue)
	return nil
}

// identityOf maps a counter's cgroup to labels: a tracked container, or the
// host (empty identity) when host counting is on.
func (c *Collector) identityOf(ctx context.Context, id uint64) (identity.Identity, bool) {
	if ident, ok := c.cgroups.identity(ctx, id); ok {
		return ident, true
	}
	return identity.Identity{}, c.cfg.CountHost
}

func (c *Collector) sendHealth(ch chan<- prometheus.Metric) {
	for _, h := range bpf.Hooks {
		v := 0.0
		if c.probe != nil && c.probe.Attached(h.Program) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(attachedDesc, prometheus.GaugeValue, v, h.Program, h.Name)
	}
	expired, overLimit := c.cgroups.stats()
	lost := map[string]uint64{}
	for _, r := range bpf.LostReasons {
		lost[r] = 0
	}
	if c.probe != nil {
		if l, err := c.probe.Lost(); err == nil {
			lost = l
		}
	}
	lost["container_limit"] = overLimit
	for r, v := range lost {
		ch <- prometheus.MustNewConstMetric(lostDesc, prometheus.CounterValue, float64(v), r)
	}
	var folded uint64
	if c.probe != nil {
		folded, _ = c.probe.Folded()
	}
	ch <- prometheus.MustNewConstMetric(foldedDesc, prometheus.CounterValue, float64(folded))
	ch <- prometheus.MustNewConstMetric(trackedDesc, prometheus.GaugeValue, float64(c.cgroups.containers()))
	ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.CounterValue, float64(expired))
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

func errnoName(e uint16) string {
	switch unix.Errno(e) {
	case unix.EPERM:
		return "EPERM"
	case unix.EACCES:
		return "EACCES"
	}
	if name := unix.ErrnoName(unix.Errno(e)); name != "" {
		return name
	}
	return strconv.Itoa(int(e))
}

// bootTime is the wall-clock time of boot, to turn the kernel's
// CLOCK_BOOTTIME event stamps into wall-clock times.
func bootTime() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Now()
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}
