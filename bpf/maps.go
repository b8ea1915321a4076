package bpf

import (
	"errors"

	"github.com/cilium/ebpf"
)

// TrackContainer starts counting a container whose own cgroup user space
// found (the kernel tracks the ones created while it runs by itself).
func (p *Probe) TrackContainer(id uint64) error {
	var zero ContainerStats
	if err := p.objs.Containers.Update(id, &zero, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return err
	}
	if err := p.objs.TrackedCgroups.Update(id, CgroupRec{Container: id, Root: 1}, ebpf.UpdateAny); err != nil {
		return err
	}
	return p.bumpGen()
}

// TrackSub attributes a sub-cgroup user space found to its container.
func (p *Probe) TrackSub(id, container uint64) error {
	if err := p.objs.TrackedCgroups.Update(id, CgroupRec{Container: container}, ebpf.UpdateAny); err != nil {
		return err
	}
	return p.bumpGen()
}

// Untrack stops attributing a cgroup; the counters of its container stay
// until Forget.
func (p *Probe) Untrack(id uint64) error {
	err := p.objs.TrackedCgroups.Delete(id)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Tracked returns the cgroups the kernel attributes, by cgroup id.
func (p *Probe) Tracked() (map[uint64]CgroupRec, error) {
	ids, recs, err := entries[uint64, CgroupRec](p.objs.TrackedCgroups)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]CgroupRec, len(ids))
	for i, id := range ids {
		out[id] = recs[i]
	}
	return out, nil
}

// Containers returns every container's counters, by the id of its own
// cgroup (0 is the host when host counting is on).
func (p *Probe) Containers() (map[uint64]*ContainerStats, error) {
	ids, stats, err := entries[uint64, ContainerStats](p.objs.Containers)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]*ContainerStats, len(ids))
	for i, id := range ids {
		out[id] = &stats[i]
	}
	return out, nil
}

// ContainerIDs returns the ids of the containers the kernel holds counters of.
func (p *Probe) ContainerIDs() ([]uint64, error) {
	ids, _, err := entries[uint64, ContainerStats](p.objs.Containers)
	return ids, err
}

// Denied is one denied-syscall counter summed over CPUs.
type Denied struct {
	Key   DeniedKey
	Value uint64
}

// Denied reads every denied-syscall counter.
func (p *Probe) Denied() ([]Denied, error) {
	keys, values, err := entries[DeniedKey, uint64](p.objs.Denied)
	if err != nil {
		return nil, err
	}
	cpus := len(values) / max(len(keys), 1)
	out := make([]Denied, len(keys))
	for i, k := range keys {
		out[i] = Denied{Key: k, Value: sumPerCPU(values[i*cpus : (i+1)*cpus])}
	}
	return out, nil
}

// Lost returns the lost-event counters by reason name.
func (p *Probe) Lost() (map[string]uint64, error) {
	out := map[string]uint64{}
	for i := 0; i < lostReasonCount; i++ {
		var values []uint64
		if err := p.objs.Lost.Lookup(uint32(i), &values); err != nil {
			return nil, err
		}
		out[LostReasons[i]] = sumPerCPU(values)
	}
	return out, nil
}

// Folded returns the escape events the kernel did not send because the same
// attempt was sent less than the event interval before.
func (p *Probe) Folded() (uint64, error) {
	var values []uint64
	if err := p.objs.EventsFolded.Lookup(uint32(0), &values); err != nil {
		return 0, err
	}
	return sumPerCPU(values), nil
}

// sumPerCPU adds up the per-CPU values of one counter.
func sumPerCPU(values []uint64) uint64 {
	var sum uint64
	for _, v := range values {
		sum += v
	}
	return sum
}

// PendingRepeats returns, by escape event key, the repeats the kernel folded
// after the last event it sent for that key: what no event has reported yet.
func (p *Probe) PendingRepeats() (map[FoldKey]uint64, error) {
	keys, folds, err := entries[FoldKey, EventFold](p.objs.EventSent)
	if err != nil {
		return nil, err
	}
	cpus := len(folds) / max(len(keys), 1)
	out := map[FoldKey]uint64{}
	for i, k := range keys {
		var n uint64
		for _, f := range folds[i*cpus : (i+1)*cpus] {
			n += f.Repeats
		}
		if n > 0 {
			out[k] = n
		}
	}
	return out, nil
}

// Forget deletes everything the kernel holds for a container whose series
// expired: its counters, denied syscalls, event times and cgroups.
func (p *Probe) Forget(container uint64) error {
	var errs []error
	if err := p.objs.Containers.Delete(container); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs,
		deleteWhere[DeniedKey, uint64](p.objs.Denied, func(k DeniedKey) bool { return k.Container == container }),
		deleteWhere[FoldKey, EventFold](p.objs.EventSent, func(k FoldKey) bool { return k.Container == container }),
	)
	tracked, err := p.Tracked()
	errs = append(errs, err)
	for id, rec := range tracked {
		if rec.Container == container {
			errs = append(errs, p.Untrack(id))
		}
	}
	return errors.Join(errs...)
}

// HasLiveTasks reports whether the kernel counts live tasks of a
// container (tasks that were its own, wherever their cgroup went).
func (p *Probe) HasLiveTasks(container uint64) bool {
	var st ContainerStats
	return p.objs.Containers.Lookup(container, &st) == nil && st.Tasks > 0
}

// deleteWhere deletes the entries of m whose key matches; V is its value
// type (one CPU's, for a per-CPU map).
func deleteWhere[K, V any](m *ebpf.Map, match func(K) bool) error {
	keys, _, err := entries[K, V](m)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !match(k) {
			continue
		}
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

// SetRuntimeSockets replaces the set of runtime API socket files.
func (p *Probe) SetRuntimeSockets(ids []SockID) error {
	return replaceSet(p.objs.RuntimeSockets, ids)
}

// SetRuntimePIDs replaces the set of container runtime processes.
func (p *Probe) SetRuntimePIDs(pids []uint32) error {
	return replaceSet(p.objs.RuntimePids, pids)
}

func replaceSet[K comparable](m *ebpf.Map, keys []K) error {
	want := map[K]bool{}
	for _, k := range keys {
		want[k] = true
		if err := m.Update(k, uint8(1), ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return deleteWhere[K, uint8](m, func(k K) bool { return !want[k] })
}

// bumpGen makes every CPU forget the verdicts it cached, after user space
// changed which cgroups count.
func (p *Probe) bumpGen() error {
	var gen uint64
	if err := p.objs.CacheGen.Get(&gen); err != nil {
		return err
	}
	// A step no kernel increment reaches, so the value is new.
	return p.objs.CacheGen.Set(gen + 1<<32)
}

func possibleCPUs() (int, error) { return ebpf.PossibleCPU() }
