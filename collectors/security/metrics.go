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
		"Syscalls by container processes that were refused: reason=\"seccomp\" when the seccomp filter refused the call before it ran (whatever errno it returned), reason=\"kernel\" when the call ran and returned EPERM or EACCES itself.", "syscall", "errno", "reason")
	namespaceDesc = desc("namespace_operations_total",
		"Namespace creation or entry from inside a container. The kind of Linux namespace is namespace_type: the identity label namespace is the Kubernetes namespace.", "operation", "namespace_type", "result")
	mountDesc = desc("mount_operations_total",
		"Mount-table and root changes from inside a container.", "operation", "result")
	capabilityDesc = desc("capability_checks_total",
		"Capability checks the kernel made for a container process; scope=\"host\" when checked against the initial user namespace, \"namespace\" inside a user namespace (see breakwater_capability_checks_inferred).", "capability", "result", "scope")
	capsDesc = desc("container_capabilities",
		"A dangerous capability was effective in the host user namespace for a process the container executed.", "capability")
	novelDesc = desc("syscalls_novel_total",
		"After its image's learning period, the container made this syscall, which no container of the image made while it learned.", "syscall")
	escapeDesc = desc("escape_attempts_total",
		"Classified container escape attempts; result=\"allowed\" means the kernel let the attempt succeed.", "technique", "result")

	attachedDesc = prometheus.NewDesc("breakwater_bpf_program_attached",
		"Whether a BPF program is attached to its hook (1) or not (0).", []string{"program", "hook"}, nil)
	lostDesc = prometheus.NewDesc("breakwater_bpf_events_lost_total",
		"Events the BPF side or the exporter could not record, by the budget that overflowed.", []string{"reason"}, nil)
	foldedDesc = prometheus.NewDesc("breakwater_bpf_events_folded_total",
		"Escape attempts not sent as events of their own, because the container made the same attempt with the same result less than --collector.security.event-interval before; the next event of that kind carries their count, the counters have them all.", nil, nil)
	trackedDesc = prometheus.NewDesc("breakwater_tracked_containers",
		"Containers whose cgroups are currently counted.", nil, nil)
	expiredDesc = prometheus.NewDesc("breakwater_series_expired_total",
		"Containers whose series were dropped after --collector.security.expiry.", nil, nil)
	evictedDesc = prometheus.NewDesc("breakwater_cgroups_evicted_total",
		"Cgroups that looked like containers but that no runtime knows, no longer tracked.", nil, nil)
	profilesDesc = prometheus.NewDesc("breakwater_syscall_profiles",
		"Images whose syscall profile breakwater keeps, by whether it is still learning.", []string{"state"}, nil)
	inferredDesc = prometheus.NewDesc("breakwater_capability_checks_inferred",
		"1 when this kernel has no cap_capable tracepoint and breakwater_capability_checks_total is inferred from the results of the syscalls that need each capability; 0 when it counts the kernel's own checks.", nil, nil)
)

// dangerousCaps are the capabilities breakwater_container_capabilities
// reports: each lets a process reach past its container. Docker's default
// set (CHOWN, NET_RAW, MKNOD, SYS_CHROOT, ...) is deliberately not here, so
// that an ordinary container moves nothing.
var dangerousCaps = []uint{
	unix.CAP_DAC_READ_SEARCH, unix.CAP_NET_ADMIN, unix.CAP_SYS_MODULE, unix.CAP_SYS_RAWIO, unix.CAP_SYS_PTRACE,
	unix.CAP_SYS_ADMIN, unix.CAP_SYS_BOOT, unix.CAP_SYS_RESOURCE, unix.CAP_SYS_TIME, unix.CAP_MAC_OVERRIDE,
	unix.CAP_MAC_ADMIN, unix.CAP_SYSLOG, unix.CAP_BPF, unix.CAP_PERFMON, unix.CAP_CHECKPOINT_RESTORE,
}

// series accumulates values by full label set, because the host and
// several containers of one identity can map onto one label set.
type series map[string]float64

const sep = "\xff"

func (s series) add(ident identity.Identity, v float64, extra ...string) {
	if v == 0 {
		return
	}
	s[strings.Join(append(ident.LabelValues(), extra...), sep)] += v
}

func (s series) emit(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType) {
	for k, v := range s {
		ch <- prometheus.MustNewConstMetric(d, t, v, strings.Split(k, sep)...)
	}
}

var results = [2]string{"denied", "allowed"}
var attemptResults = [2]string{"blocked", "allowed"}
var checkResults = [2]string{"denied", "granted"}
var scopes = [2]string{"host", "namespace"}

// Update reads the in-kernel counters and sends every security series.
func (c *Collector) Update(ch chan<- prometheus.Metric) error {
	c.sendHealth(ch)
	if c.probe == nil {
		return c.loadErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	stats, err := c.probe.Containers()
	if err != nil {
		return err
	}
	ns, mounts, caps, escapes, held, ds := series{}, series{}, series{}, series{}, series{}, series{}
	for id, st := range stats {
		ident, ok := c.identityOf(ctx, id)
		if !ok {
			continue
		}
		for t := 1; t < len(bpf.TechniqueNames) && t < len(st.Escapes); t++ {
			for a, result := range attemptResults {
				escapes.add(ident, float64(st.Escapes[t][a]), bpf.TechniqueNames[t], result)
			}
		}
		for op := 1; op < len(bpf.NsOpNames); op++ {
			for typ, typName := range bpf.NsTypeNames {
				for a, result := range results {
					ns.add(ident, float64(st.NamespaceOps[op][typ][a]), bpf.NsOpNames[op], typName, result)
				}
			}
		}
		for op := 1; op < len(bpf.MountOpNames); op++ {
			for a, result := range results {
				mounts.add(ident, float64(st.MountOps[op][a]), bpf.MountOpNames[op], result)
			}
		}
		for cp := range st.CapabilityChecks {
			for a, result := range checkResults {
				for s, scope := range scopes {
					caps.add(ident, float64(st.CapabilityChecks[cp][a][s]), capabilityName(cp), result, scope)
				}
			}
		}
		// Refused calls past the container's budget of distinct keys.
		for i, over := range st.DeniedOver {
			{
				ds.add(ident, float64(over), "other", "other", bpf.DenyReasonNames[bpf.DenyReason(i+1)])
			}
		}
		for _, bit := range dangerousCaps {
			if st.ExecCaps&(1<<bit) != 0 {
				held[strings.Join(append(ident.LabelValues(), capabilityName(int(bit))), sep)] = 1
			}
		}
	}
	escapes.emit(ch, escapeDesc, prometheus.CounterValue)
	ns.emit(ch, namespaceDesc, prometheus.CounterValue)
	mounts.emit(ch, mountDesc, prometheus.CounterValue)
	caps.emit(ch, capabilityDesc, prometheus.CounterValue)
	held.emit(ch, capsDesc, prometheus.GaugeValue)

	denied, err := c.probe.Denied()
	if err != nil {
		return err
	}
	for _, d := range denied {
		ident, ok := c.identityOf(ctx, d.Key.Container)
		if !ok {
			continue
		}
		ds.add(ident, float64(d.Value), syscalls.Name(syscalls.ABI(d.Key.Abi), uint32(d.Key.Nr)), errnoName(d.Key.Err),
			bpf.DenyReasonNames[bpf.DenyReason(d.Key.Reason)])
	}
	ds.emit(ch, deniedDesc, prometheus.CounterValue)

	novel := series{}
	for id, calls := range c.containers.novelCalls() {
		if ident, ok := c.identityOf(ctx, id); ok {
			for _, call := range calls {
				novel.add(ident, 1, call)
			}
		}
	}
	novel.emit(ch, novelDesc, prometheus.CounterValue)
	return nil
}

// identityOf maps a container id to labels: a known container, or the host
// (empty identity) when host counting is on.
func (c *Collector) identityOf(ctx context.Context, id uint64) (identity.Identity, bool) {
	if id == 0 {
		return identity.Identity{}, c.cfg.CountHost
	}
	ident, ok := c.containers.identity(ctx, id)
	return ident, ok && !ident.Sandbox // a pod's sandbox has no series
}

func (c *Collector) sendHealth(ch chan<- prometheus.Metric) {
	for _, h := range bpf.Hooks {
		v := 0.0
		if c.probe != nil && c.probe.Attached(h.Program) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(attachedDesc, prometheus.GaugeValue, v, h.Program, h.Name)
	}
	expired, overLimit, evicted := c.containers.stats()
	lost := map[string]uint64{}
	for _, r := range bpf.LostReasons {
		lost[r] = 0
	}
	if c.probe != nil {
		if l, err := c.probe.Lost(); err == nil {
			lost = l
		}
	}
	lost["container_limit"] += overLimit
	for r, v := range lost {
		ch <- prometheus.MustNewConstMetric(lostDesc, prometheus.CounterValue, float64(v), r)
	}
	var folded uint64
	inferred := 0.0
	if c.probe != nil {
		folded, _ = c.probe.Folded()
		if c.probe.CapabilitiesInferred() {
			inferred = 1
		}
	}
	ch <- prometheus.MustNewConstMetric(foldedDesc, prometheus.CounterValue, float64(folded))
	ch <- prometheus.MustNewConstMetric(trackedDesc, prometheus.GaugeValue, float64(c.containers.running()))
	ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.CounterValue, float64(expired))
	ch <- prometheus.MustNewConstMetric(evictedDesc, prometheus.CounterValue, float64(evicted))
	ch <- prometheus.MustNewConstMetric(inferredDesc, prometheus.GaugeValue, inferred)
	learning, learned := 0.0, 0.0
	for _, image := range c.profiles.images() {
		if pr, _ := c.profiles.get(image); pr.Since.IsZero() {
			learning++
		} else {
			learned++
		}
	}
	ch <- prometheus.MustNewConstMetric(profilesDesc, prometheus.GaugeValue, learning, "learning")
	ch <- prometheus.MustNewConstMetric(profilesDesc, prometheus.GaugeValue, learned, "learned")
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
