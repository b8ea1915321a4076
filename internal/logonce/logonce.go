// Package logonce logs a warning that would repeat (the same look-alike
// cgroup found again at every resync) once per subject, then only a
// summary of the repeats now and then.
package logonce

import (
	"log/slog"
	"sync"
	"time"
)

// maxSubjects bounds the subjects remembered; past it the memory starts
// over and a subject may be logged once more.
const maxSubjects = 4096

// Repeats is one warning message. Its zero value is not usable: use New.
type Repeats struct {
	logger *slog.Logger
	msg    string
	every  time.Duration

	mu       sync.Mutex
	seen     map[string]bool
	repeats  int
	subjects map[string]bool // subjects that repeated since the last summary
	since    time.Time
}

// New returns a warning msg that summarises its repeats at most every interval.
func New(logger *slog.Logger, msg string, every time.Duration) *Repeats {
	return &Repeats{logger: logger, msg: msg, every: every, seen: map[string]bool{}, subjects: map[string]bool{}}
}

// Warn logs msg with args the first time subject is seen. A repeat is
// counted; once every interval the repeats are logged as one Info line.
func (r *Repeats) Warn(now time.Time, subject string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since.IsZero() {
		r.since = now
	}
	if !r.seen[subject] {
		if len(r.seen) >= maxSubjects {
			r.seen = map[string]bool{}
		}
		r.seen[subject] = true
		r.logger.Warn(r.msg, args...)
	} else {
		r.repeats++
		r.subjects[subject] = true
	}
	if r.repeats > 0 && now.Sub(r.since) >= r.every {
		r.logger.Info(r.msg+" (repeats, each logged once above)", "repeats", r.repeats, "subjects", len(r.subjects),
			"since", r.since.UTC().Format(time.RFC3339))
		r.repeats, r.subjects, r.since = 0, map[string]bool{}, now
	}
}
