package collectors

import "sync"

// Health collects degradations that collectors report at start or while
// running (a missing BTF, a detached probe, hidden kernel symbols), so that
// the exporter can sum them up in one log line once its collectors are up.
type Health struct {
	mu       sync.Mutex
	problems map[string]string
}

// Degraded records why a part runs degraded; an empty reason clears it.
func (h *Health) Degraded(part, reason string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.problems == nil {
		h.problems = map[string]string{}
	}
	if reason == "" {
		delete(h.problems, part)
		return
	}
	h.problems[part] = reason
}

// Problems returns a copy of the current degradations.
func (h *Health) Problems() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]string, len(h.problems))
	for k, v := range h.problems {
		out[k] = v
	}
	return out
}
