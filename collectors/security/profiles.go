package security

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/breakwater/breakwater/bpf"
	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/internal/syscalls"
)

// profileVersion marks the state file's format; a file of another version
// is foreign and ignored.
const profileVersion = 1

// maxProfiles bounds the state: images beyond it are not learned (and
// counted), so the file and the memory stay small whatever runs.
const maxProfiles = 2048

// profile is what one image was seen to do: the syscalls its containers
// made, per ABI, and how long it has been learned.
type profile struct {
	Syscalls map[string][]string `json:"syscalls"` // ABI name -> syscall names, sorted
	// Learned is how long containers of the image ran while learning.
	Learned Duration  `json:"learned"`
	First   time.Time `json:"first_seen"`
	// Since is when learning ended; zero while it goes on.
	Since time.Time `json:"learned_since,omitzero"`
}

// Duration is a time.Duration that reads and writes as a string ("1h0m0s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

type profileFile struct {
	Version  int                 `json:"version"`
	Profiles map[string]*profile `json:"profiles"` // by image
}

// profiles is every image's profile, kept in a small state file so that
// learning survives container and exporter restarts.
type profiles struct {
	mu       sync.Mutex
	state    *statefile.Dir // a Dir without a path keeps profiles in memory only
	period   time.Duration  // how long an image learns
	byImage  map[string]*profile
	dropped  uint64 // images not learned because of maxProfiles
	loadErr  error  // why the state file was ignored
	dirty    bool
	lastSave time.Time
}

// ProfileFile is the profile state's file name in the state directory.
const ProfileFile = "profiles.json"

// newProfiles loads the profile state. A missing file is an empty state; a
// corrupt or foreign one is reported (loadErr), moved aside for the
// operator and ignored, never fatal.
func newProfiles(state *statefile.Dir, learn time.Duration) *profiles {
	p := &profiles{state: state, period: learn, byImage: map[string]*profile{}}
	var f profileFile
	if _, err := state.Load(ProfileFile, func(b []byte) error { return decodeProfiles(b, &f) }); err != nil {
		p.loadErr = err
		return p
	}
	for image, pr := range f.Profiles {
		if pr == nil || pr.Syscalls == nil || len(p.byImage) >= maxProfiles {
			continue
		}
		p.byImage[image] = pr
	}
	return p
}

// decodeProfiles reads a profile state file, rejecting one of another
// version.
func decodeProfiles(b []byte, f *profileFile) error {
	if err := json.Unmarshal(b, f); err != nil {
		return fmt.Errorf("not a breakwater profile state: %w", err)
	}
	if f.Version != profileVersion || f.Profiles == nil {
		return fmt.Errorf("profile state of version %d, want %d", f.Version, profileVersion)
	}
	return nil
}

// CheckProfileState says what `breakwater check` reports of the profile
// state in dir.
func CheckProfileState(dir string) string {
	return statefile.Inspect(dir, ProfileFile, func(b []byte) error { return decodeProfiles(b, &profileFile{}) })
}

// learn adds what an image's containers made to its profile while the
// image is learning. ran is how long the image ran (one container or more)
// since the last call; learning ends when it has run the learning period.
func (p *profiles) learn(image string, seen map[syscalls.ABI][]string, ran time.Duration, now time.Time) {
	if image == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.byImage[image]
	if pr == nil {
		if len(p.byImage) >= maxProfiles {
			p.dropped++
			return
		}
		pr = &profile{Syscalls: map[string][]string{}, First: now}
		p.byImage[image] = pr
	}
	if !pr.Since.IsZero() {
		return
	}
	for abi, names := range seen {
		pr.Syscalls[abi.String()] = union(pr.Syscalls[abi.String()], names)
	}
	pr.Learned += Duration(ran)
	if time.Duration(pr.Learned) >= p.period {
		pr.Since = now
	}
	p.dirty = true
}

// novel returns the calls outside an image's profile once it has learned;
// nil while it learns.
func (p *profiles) novel(image string, seen map[syscalls.ABI][]string) (novel []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.byImage[image]
	if pr == nil || pr.Since.IsZero() {
		return nil
	}
	for abi, names := range seen {
		known := pr.Syscalls[abi.String()]
		for _, n := range names {
			if _, found := slices.BinarySearch(known, n); !found {
				novel = append(novel, n)
			}
		}
	}
	return novel
}

// union merges sorted a with b, sorted, without duplicates.
func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	sort.Strings(out)
	return slices.Compact(out)
}

// get returns a copy of an image's profile.
func (p *profiles) get(image string) (profile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.byImage[image]
	if !ok {
		return profile{}, false
	}
	c := *pr
	c.Syscalls = map[string][]string{}
	for abi, names := range pr.Syscalls {
		c.Syscalls[abi] = slices.Clone(names)
	}
	return c, true
}

// images lists the images with a profile.
func (p *profiles) images() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.byImage))
	for image := range p.byImage {
		out = append(out, image)
	}
	sort.Strings(out)
	return out
}

// save writes the state file when it changed, at most every interval,
// atomically (a crash leaves the old file or the new one).
func (p *profiles) save(now time.Time, interval time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Path(ProfileFile) == "" || !p.dirty || now.Sub(p.lastSave) < interval {
		return nil
	}
	b, err := json.MarshalIndent(profileFile{Version: profileVersion, Profiles: p.byImage}, "", " ")
	if err != nil {
		return err
	}
	if err := p.state.Save(ProfileFile, b); err != nil {
		return err
	}
	p.dirty, p.lastSave = false, now
	return nil
}

// syscallSet names the syscalls a container's kernel bitmap holds, per ABI.
func syscallSet(st *bpf.ContainerStats) map[syscalls.ABI][]string {
	out := map[syscalls.ABI][]string{}
	for _, abi := range syscalls.ABIs() {
		for w, word := range st.Syscalls[abi] {
			for b := 0; b < 64 && word != 0; b++ {
				if word&(1<<b) == 0 {
					continue
				}
				word &^= 1 << b
				if name := syscalls.Name(abi, uint32(w*64+b)); name != "unknown" {
					out[abi] = append(out[abi], name)
				}
			}
		}
		sort.Strings(out[abi])
	}
	return out
}

// learnProfiles feeds every image's profile with what its containers made,
// and notes, for images that have learned, what their containers made
// outside it.
func (c *Collector) learnProfiles(ctx context.Context, now time.Time) {
	ran := time.Duration(0)
	if !c.lastLearn.IsZero() {
		ran = now.Sub(c.lastLearn)
	}
	c.lastLearn = now
	stats, err := c.probe.Containers()
	if err != nil {
		c.logger.Error("reading containers' syscalls", "err", err)
		return
	}
	type seenBy struct {
		image string
		calls map[syscalls.ABI][]string
	}
	containers := map[uint64]seenBy{}
	images := map[string]map[syscalls.ABI][]string{}
	running := map[string]bool{}
	for id, st := range stats {
		ident, ok := c.containers.identity(ctx, id)
		if id == 0 || !ok || ident.Image == "" || ident.Sandbox {
			continue
		}
		calls := syscallSet(st)
		containers[id] = seenBy{ident.Image, calls}
		if images[ident.Image] == nil {
			images[ident.Image] = map[syscalls.ABI][]string{}
		}
		for abi, names := range calls {
			images[ident.Image][abi] = union(images[ident.Image][abi], names)
		}
		running[ident.Image] = running[ident.Image] || c.containers.has(id)
	}
	for image, calls := range images {
		r := ran
		if !running[image] {
			r = 0 // only time an image runs teaches it
		}
		c.profiles.learn(image, calls, r, now)
	}
	for id, s := range containers {
		c.containers.addNovel(id, c.profiles.novel(s.image, s.calls))
	}
	if err := c.profiles.save(now, time.Minute); err != nil {
		c.health.Degraded("profiles", err.Error())
		c.logger.Error("saving syscall profiles", "err", err)
	} else {
		c.health.Degraded("profiles", "")
	}
}
