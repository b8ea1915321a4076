// Package statefile keeps breakwater's state files in one directory: each
// written atomically, a corrupt one moved aside for the operator instead of
// being overwritten by the next save, and the state of each shown by
// `breakwater check` and the breakwater_state_file metric.
package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater/breakwater/internal/names"
)

// CorruptSuffix names the copy of a state file its owner could not read.
const CorruptSuffix = ".corrupt"

// Dir is a state directory. The zero path keeps nothing: Load finds no
// file and Save writes none.
type Dir struct {
	path     string
	readOnly bool // a reader beside the exporter: moves and writes nothing
	desc     *prometheus.Desc

	mu       sync.Mutex
	writeErr map[string]error // by file name, the last Save's error; a key per file in use
}

// New returns the state directory at path ("" for none).
func New(path string) *Dir {
	return &Dir{
		path: path,
		desc: prometheus.NewDesc(names.MetricStateFile,
			"State of each of breakwater's state files (1 for the current state): ok; corrupt, a copy it could not read is kept beside it (remove the copy once inspected); unwritable, the last save failed.",
			[]string{names.LabelFile, names.LabelState}, nil),
		writeErr: map[string]error{},
	}
}

// ReadOnly returns the state directory at path for a command that reads
// what the exporter keeps (`breakwater profile`): Load moves nothing aside
// and Save writes nothing.
func ReadOnly(path string) *Dir {
	d := New(path)
	d.readOnly = true
	return d
}

// Path is where the directory's file name lives; "" without a directory.
func (d *Dir) Path(name string) string {
	if d == nil || d.path == "" {
		return ""
	}
	return filepath.Join(d.path, name)
}

// Load reads the file name and hands it to decode. A missing file is
// found=false and no error. A file decode rejects is moved to
// name+CorruptSuffix (replacing an older copy) so that the next save does
// not destroy it, and the error says where it went.
func (d *Dir) Load(name string, decode func([]byte) error) (found bool, err error) {
	p := d.Path(name)
	if p == "" {
		return false, nil
	}
	d.track(name)
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	if err := decode(b); err != nil {
		if d.readOnly {
			return true, fmt.Errorf("%s: %w", p, err)
		}
		if rerr := os.Rename(p, p+CorruptSuffix); rerr != nil {
			return true, fmt.Errorf("%s: %w (and it could not be kept aside: %v)", p, err, rerr)
		}
		return true, fmt.Errorf("%s: %w; kept as %s", p, err, p+CorruptSuffix)
	}
	return true, nil
}

// Save replaces the file name with b atomically: a crash leaves the old
// file or the new one.
func (d *Dir) Save(name string, b []byte) error {
	p := d.Path(name)
	if p == "" || d.readOnly {
		return nil
	}
	err := write(p, b)
	d.mu.Lock()
	d.writeErr[name] = err
	d.mu.Unlock()
	return err
}

// Remove deletes the file name, as a save of nothing.
func (d *Dir) Remove(name string) error {
	p := d.Path(name)
	if p == "" || d.readOnly {
		return nil
	}
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	d.mu.Lock()
	d.writeErr[name] = err
	d.mu.Unlock()
	return err
}

func write(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (d *Dir) track(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.writeErr[name]; !ok {
		d.writeErr[name] = nil
	}
}

// State is what Collect says of one file: one of names.StateFileStates.
// A write that fails outweighs a kept corrupt copy: it loses data now.
func (d *Dir) State(name string) string {
	d.mu.Lock()
	werr := d.writeErr[name]
	d.mu.Unlock()
	switch {
	case werr != nil:
		return names.StateFileUnwritable
	case exists(d.Path(name) + CorruptSuffix):
		return names.StateFileCorrupt
	}
	return names.StateFileOK
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Describe implements prometheus.Collector.
func (d *Dir) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

// Collect implements prometheus.Collector: a series per file in use and
// state.
func (d *Dir) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	files := make([]string, 0, len(d.writeErr))
	for f := range d.writeErr {
		files = append(files, f)
	}
	d.mu.Unlock()
	sort.Strings(files)
	for _, f := range files {
		cur := d.State(f)
		for _, s := range names.StateFileStates {
			v := 0.0
			if s == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, v, f, s)
		}
	}
}

// Inspect says, for `breakwater check`, what a running exporter would make
// of the file name: whether it reads, whether a corrupt copy is kept, and
// whether the directory takes a save. It changes nothing but creating the
// directory, as the first save would.
func Inspect(dir, name string, decode func([]byte) error) string {
	if dir == "" {
		return "not kept (no state directory)"
	}
	p := filepath.Join(dir, name)
	var out string
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		out = "none yet at " + p
	case err != nil:
		out = "unreadable: " + err.Error()
	case decode(b) != nil:
		out = fmt.Sprintf("corrupt: %v; the exporter keeps it as %s and starts afresh", decode(b), p+CorruptSuffix)
	default:
		out = "readable at " + p
	}
	if exists(p + CorruptSuffix) {
		out += "; a corrupt copy is kept at " + p + CorruptSuffix + " (remove it once inspected)"
	}
	if err := writable(dir); err != nil {
		out += "; not writable: " + err.Error()
	}
	return out
}

// writable creates and removes a file in dir (creating dir as a save would).
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
