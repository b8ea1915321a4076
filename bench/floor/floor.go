// Package floor attaches empty programs on every hook breakwater uses: the
// cost any tracepoint-based tool pays there, which `make bench` measures
// breakwater against.
package floor

//go:generate go tool -modfile=../../tools/go.mod bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 floor floor.bpf.c -- -I../../bpf/headers

import (
	"errors"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Floor is the empty programs, attached.
type Floor struct {
	links []link.Link
	coll  *ebpf.Collection
}

// Load attaches the empty programs.
func Load() (*Floor, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, err
	}
	spec, err := loadFloor()
	if err != nil {
		return nil, err
	}
	f := &Floor{}
	if f.coll, err = ebpf.NewCollection(spec); err != nil {
		return nil, err
	}
	for name, prog := range f.coll.Programs {
		var l link.Link
		if prog.Type() == ebpf.Tracing {
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		} else {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: strings.TrimPrefix(name, "floor_"), Program: prog})
		}
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
	f.coll.Close()
	return errors.Join(errs...)
}
