package security

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/syscalls"
)

func (c *Collector) readEvents(ctx context.Context, r *ringbuf.Reader) {
	var rec ringbuf.Record
	for {
		if err := r.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || ctx.Err() != nil {
				return
			}
			c.logger.Error("reading ring buffer", "err", err)
			continue
		}
		c.handle(ctx, rec.RawSample)
	}
}

func (c *Collector) handle(ctx context.Context, raw []byte) {
	if len(raw) < 4 {
		return
	}
	switch bpf.EventType(binary.LittleEndian.Uint32(raw)) {
	case bpf.EventMkdir, bpf.EventRmdir:
		var e bpf.CgroupEvent
		if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, &e); err != nil {
			return
		}
		c.cgroupEvent(ctx, &e)
	case bpf.EventSyscall:
		var e bpf.SyscallEvent
		if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, &e); err != nil {
			return
		}
		c.escapeEvent(ctx, &e)
	}
}

// cgroupEvent follows what the kernel decided at cgroup_mkdir and
// cgroup_rmdir: a cgroup it made a container of its own is named here.
func (c *Collector) cgroupEvent(ctx context.Context, e *bpf.CgroupEvent) {
	path := cString(e.Path[:])
	if bpf.EventType(e.Type) == bpf.EventRmdir {
		c.containers.remove(e.CgroupId, time.Now())
		c.expire() // keep the removed within their share of the kernel's map
		return
	}
	if e.Container != e.CgroupId {
		return // a sub-cgroup of a container, or not a container's
	}
	root, cid, ok := identity.ContainerRootFromCgroupPath(path)
	if !ok || root != path {
		// The kernel's test is looser (64 hex at the end); what user
		// space does not call a container is not counted.
		_ = c.probe.Untrack(e.CgroupId)
		_ = c.probe.Forget(e.CgroupId)
		return
	}
	c.addContainer(e.CgroupId, path, cid, time.Now(), map[uint64]bpf.CgroupRec{e.CgroupId: {}})
	c.listenersMu.Lock()
	ls := append([]CgroupListener(nil), c.listeners...)
	c.listenersMu.Unlock()
	for _, l := range ls {
		l.CgroupCreated(path, e.CgroupId)
	}
	go c.containers.identity(ctx, e.CgroupId) // capture the name while the container exists
}

// escapeAttempt names an escape event: the syscall and the result. ok is
// false for a technique the kernel does not know.
func escapeAttempt(abi, nr uint16, technique uint8, origin uint8, errno uint16) (syscall, tech, result string, ok bool) {
	if int(technique) >= len(bpf.TechniqueNames) || bpf.TechniqueNames[technique] == "" {
		return "", "", "", false
	}
	syscall = syscalls.Name(syscalls.ABI(abi), uint32(nr))
	if bpf.Origin(origin) == bpf.OriginIOUring {
		syscall = "io_uring:" + syscall
	}
	result = escape.Blocked
	if errno == 0 {
		result = escape.Allowed
	}
	return syscall, bpf.TechniqueNames[technique], result, true
}

func (c *Collector) escapeEvent(ctx context.Context, e *bpf.SyscallEvent) {
	name, technique, result, ok := escapeAttempt(uint16(e.Abi), e.Nr, e.Technique, e.Origin, e.Err)
	if !ok {
		return
	}
	ident, _ := c.containers.identity(ctx, e.Container)
	ev := escape.Event{
		Time:      c.bootTime.Add(time.Duration(e.KtimeNs)),
		Identity:  ident,
		Technique: technique,
		Result:    result,
		Syscall:   name,
		Comm:      cString(e.Comm[:]),
		PID:       e.Tgid,
		Detail:    cString(e.Detail[:]),
		Repeats:   e.Repeats,
	}
	if int(e.Sub) < len(bpf.PathClassNames) && bpf.PathClassNames[e.Sub] != "" {
		ev.Object = bpf.PathClassNames[e.Sub]
	}
	if e.Err != 0 {
		ev.Errno = errnoName(e.Err)
	}
	if suppressed, ok := c.logLimit.allow(logKey(ident, ev.Technique, ev.Result), 1+ev.Repeats, ev.Time); ok {
		c.logger.Warn("escape attempt", "technique", ev.Technique, "result", ev.Result, "syscall", ev.Syscall,
			"errno", ev.Errno, "container_id", ident.ContainerID, "name", ident.Name, "image", ident.Image,
			"namespace", ident.Namespace, "pod", ident.Pod, "comm", ev.Comm, "pid", ev.PID, "detail", ev.Detail,
			"object", ev.Object, "similar_since_last_log", suppressed)
	}
	if c.sink != nil {
		c.sink.Push(ev)
	}
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, ch := range b {
		if ch == 0 {
			break
		}
		out = append(out, byte(ch))
	}
	return strings.ToValidUTF8(string(out), "?")
}

// logKey is what the log folds escape attempts by.
func logKey(ident identity.Identity, technique, result string) string {
	return ident.ContainerID + "/" + technique + "/" + result
}

// logPendingRepeats adds the attempts the kernel folded after its last event
// of each kind to what the log says at shutdown.
func (c *Collector) logPendingRepeats() {
	pending, err := c.probe.PendingRepeats()
	if err != nil {
		c.logger.Error("reading folded escape attempts", "err", err)
		return
	}
	for key, n := range pending {
		errno := uint16(1)
		if key.Allowed != 0 {
			errno = 0
		}
		if _, technique, result, ok := escapeAttempt(uint16(key.Abi), key.Nr, key.Technique, 0, errno); ok {
			c.logLimit.hold(logKey(c.containers.known(key.Container), technique, result), n)
		}
	}
}

// logLimiter lets one line per key through per window and counts the rest,
// so that a storm of attempts is a handful of log lines, not gigabytes. The
// counters stay exact; only the log is folded.
type logLimiter struct {
	mu   sync.Mutex
	keys map[string]*logWindow
}

type logWindow struct {
	start      time.Time
	suppressed uint64
}

const logWindowLen = 10 * time.Second

// allow reports whether to log an event standing for weight attempts now,
// and how many similar attempts came before it since the last line.
func (l *logLimiter) allow(key string, weight uint64, now time.Time) (suppressed uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, seen := l.window(key)
	if seen && now.Sub(w.start) < logWindowLen {
		w.suppressed += weight
		return 0, false
	}
	suppressed, w.start, w.suppressed = w.suppressed+weight-1, now, 0
	return suppressed, true
}

// hold counts n attempts as held back, for the next line or drain.
func (l *logLimiter) hold(key string, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, _ := l.window(key)
	w.suppressed += n
}

// window returns key's window, created empty if it had none. Callers hold mu.
func (l *logLimiter) window(key string) (w *logWindow, existed bool) {
	if l.keys == nil {
		l.keys = map[string]*logWindow{}
	}
	if w, ok := l.keys[key]; ok {
		return w, true
	}
	w = &logWindow{}
	l.keys[key] = w
	return w, false
}

// drain returns and forgets the attempts held back, by key.
func (l *logLimiter) drain() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]uint64{}
	for k, w := range l.keys {
		if w.suppressed > 0 {
			out[k] = w.suppressed
		}
	}
	l.keys = nil
	return out
}

// prune forgets keys whose window closed long ago.
func (l *logLimiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, w := range l.keys {
		if now.Sub(w.start) > 6*logWindowLen {
			delete(l.keys, k)
		}
	}
}
