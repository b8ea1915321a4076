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
	out := map[uint64]CgroupRec{}
	var (
		id  uint64
		rec CgroupRec
	)
	it := p.objs.TrackedCgroups.Iterate()
	for it.Next(&id, &rec) {
		out[id] = rec
	}
	return out, it.Err()
}

// Containers returns every container's counters, by the id of its own
// cgroup (0 is the host when host counting is on).
func (p *Probe) Containers() (map[uint64]*ContainerStats, error) {
	out := map[uint64]*ContainerStats{}
	var id uint64
	st := new(ContainerStats)
	it := p.objs.Containers.Iterate()
	for it.Next(&id, st) {
		out[id] = st
		st = new(ContainerStats)
	}
	return out, it.Err()
}

// ContainerIDs returns the ids of the containers the kernel holds counters of.
func (p *Probe) ContainerIDs() ([]uint64, error) {
	var (
		out      []uint64
		key, nxt uint64
	)
	for err := p.objs.Containers.NextKey(nil, &nxt); ; err = p.objs.Containers.NextKey(key, &nxt) {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, nxt)
		key = nxt
	}
}

// Denied is one denied-syscall counter summed over CPUs.
type Denied struct {
	Key   DeniedKey
	Value uint64
}

// Denied reads every denied-syscall counter.
func (p *Probe) Denied() ([]Denied, error) {
	var (
		out    []Denied
		key    DeniedKey
		values []uint64
	)
	it := p.objs.Denied.Iterate()
	for it.Next(&key, &values) {
		out = append(out, Denied{Key: key, Value: sumPerCPU(values)})
	}
	return out, it.Err()
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
	out := map[FoldKey]uint64{}
	var (
		key   FoldKey
		folds []EventFold
	)
	it := p.objs.EventSent.Iterate()
	for it.Next(&key, &folds) {
		var n uint64
		for _, f := range folds {
			n += f.Repeats
		}
		if n > 0 {
			out[key] = n
		}
	}
	return out, it.Err()
}

// Forget deletes everything the kernel holds for a container whose series
// expired: its counters, denied syscalls, event times and cgroups.
func (p *Probe) Forget(container uint64) error {
	var errs []error
	if err := p.objs.Containers.Delete(container); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs,
		deleteWhere(p.objs.Denied, new(DeniedKey), new([]uint64), func(k any) bool { return k.(*DeniedKey).Container == container }),
		deleteWhere(p.objs.EventSent, new(FoldKey), new([]EventFold), func(k any) bool { return k.(*FoldKey).Container == container }),
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

// deleteWhere deletes the entries of m whose key matches; key and value are
// where iteration decodes to.
func deleteWhere[K any](m *ebpf.Map, key *K, value any, match func(any) bool) error {
	var keys []K
	it := m.Iterate()
	for it.Next(key, value) {
		if match(key) {
			keys = append(keys, *key)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

// SetRuntimeSockets replaces the set of runtime API socket files.
func (p *Probe) SetRuntimeSockets(ids []SockID) error {
	return replaceSet(p.objs.RuntimeSockets, ids, new(SockID))
}

// SetRuntimePIDs replaces the set of container runtime processes.
func (p *Probe) SetRuntimePIDs(pids []uint32) error {
	return replaceSet(p.objs.RuntimePids, pids, new(uint32))
}

func replaceSet[K comparable](m *ebpf.Map, keys []K, scratch *K) error {
	want := map[K]bool{}
	for _, k := range keys {
		want[k] = true
		if err := m.Update(k, uint8(1), ebpf.UpdateAny); err != nil {
			return err
		}
	}
	var stale []K
	var one uint8
	it := m.Iterate()
	for it.Next(scratch, &one) {
		if !want[*scratch] {
			stale = append(stale, *scratch)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
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
