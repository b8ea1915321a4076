package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// batchStart is how many entries one batch lookup asks for at first.
const batchStart = 256

// entries reads every entry of a hash map with the kernel's batch lookup,
// which walks the map bucket by bucket under the bucket's lock. Entries the
// kernel adds or deletes meanwhile (at cgroup_mkdir and rmdir, at expiry)
// are seen or not, but never make the walk start over: Map.Iterate does
// start over at each such delete and gives up once it has taken
// max_entries steps, which a map churning near its size reaches at once.
// A per-CPU map has PossibleCPU values per key, in order.
func entries[K, V any](m *ebpf.Map) (keys []K, values []V, err error) {
	perKey := 1
	if perCPU(m.Type()) {
		if perKey, err = ebpf.PossibleCPU(); err != nil {
			return nil, nil, err
		}
	}
	limit := max(int(m.MaxEntries()), 1)
	chunk := min(batchStart, limit)
	var cursor ebpf.MapBatchCursor
	for {
		k := make([]K, chunk)
		v := make([]V, chunk*perKey)
		n, err := m.BatchLookup(&cursor, k, v, nil)
		if errors.Is(err, unix.ENOSPC) && chunk < limit {
			// A bucket holds more entries than the batch: ask again
			// for the same bucket with room for it.
			chunk = min(2*chunk, limit)
			continue
		}
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil, fmt.Errorf("reading map %s: %w", m, err)
		}
		keys = append(keys, k[:n]...)
		values = append(values, v[:n*perKey]...)
		if err != nil {
			return keys, values, nil // ErrKeyNotExist: the walk is complete
		}
	}
}

func perCPU(t ebpf.MapType) bool {
	switch t {
	case ebpf.PerCPUHash, ebpf.PerCPUArray, ebpf.LRUCPUHash, ebpf.PerCPUCGroupStorage:
		return true
	}
	return false
}
