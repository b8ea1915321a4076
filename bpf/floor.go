package bpf

import (
	"errors"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Floor is the empty programs on the syscall hooks, for benchmarks.
type Floor struct {
	links []link.Link
	objs  floorObjects
}

// LoadFloor attaches empty programs to sys_enter and sys_exit.
func LoadFloor() (*Floor, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, err
	}
	f := &Floor{}
	if err := loadFloorObjects(&f.objs, nil); err != nil {
		return nil, err
	}
	for name, prog := range map[string]*ebpf.Program{"sys_enter": f.objs.FloorSysEnter, "sys_exit": f.objs.FloorSysExit} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: prog})
		if err != nil {
			f.Close()
			return nil, err
		}
		f.links = append(f.links, l)
	}
	return f, nil
}

// Close detaches the empty programs.
func (f *Floor) Close() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	return errors.Join(append(errs, f.objs.Close())...)
}
