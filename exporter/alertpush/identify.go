package alertpush

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
)

// How often a runtime is asked again: while an attempt waits (a runtime
// that is down refuses a connection in microseconds), and once its alert
// went out by id alone.
const (
	awaitEvery   = 100 * time.Millisecond
	catchUpEvery = time.Second
)

// waiter holds the attempts of a container no runtime has named yet.
type waiter struct {
	events []escape.Event // waiting for the first answer
	// anonymous: the wait passed, the alerts went out with container_id
	// alone and are renamed when a runtime answers; later attempts fold
	// into them at once.
	anonymous bool
}

// answer is what the runtimes said of a container, first within the wait
// and then, if none answered, once one does or the alerts end.
type answer struct {
	containerID string
	ident       identity.Identity
	presence    identity.Presence
	catchUp     bool
}

// unnamed reports whether an event's container has an id but no name a
// runtime gave.
func unnamed(id identity.Identity) bool {
	return id.ContainerID != "" && id.Name == "" && id.Pod == "" && id.Image == ""
}

// admit folds an event, or holds it while its container's runtime is asked.
func (p *Pusher) admit(ctx context.Context, e escape.Event) {
	cid := e.Identity.ContainerID
	if p.cfg.Identities == nil || !unnamed(e.Identity) {
		p.fold(e)
		return
	}
	if id, ok := p.cfg.Identities.Known(cid); ok {
		e.Identity = id
		p.fold(e)
		return
	}
	w := p.waiting[cid]
	switch {
	case w == nil && len(p.waiting) < p.cfg.QueueCapacity:
		p.waiting[cid] = &waiter{events: []escape.Event{e}}
		go p.await(ctx, cid)
	case w == nil || w.anonymous || len(w.events) >= p.cfg.QueueCapacity:
		p.fold(e) // bounded: what does not fit goes by id alone
	default:
		w.events = append(w.events, e)
	}
}

// await asks the runtimes for a container for at most IdentityWait, then,
// if none answered, until one does or the alerts it raised would have
// ended, and reports each answer to Run.
func (p *Pusher) await(ctx context.Context, cid string) {
	wctx, cancel := context.WithTimeout(ctx, p.cfg.IdentityWait)
	id, pr := p.cfg.Identities.Await(wctx, cid, awaitEvery)
	cancel()
	if !p.answer(ctx, answer{containerID: cid, ident: id, presence: pr}) || pr != identity.Unanswered {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.ResolveTimeout)
	id, pr = p.cfg.Identities.Await(cctx, cid, catchUpEvery)
	cancel()
	p.answer(ctx, answer{containerID: cid, ident: id, presence: pr, catchUp: true})
}

func (p *Pusher) answer(ctx context.Context, a answer) bool {
	select {
	case p.answers <- a:
		return true
	case <-ctx.Done():
		return false
	}
}

// answered folds the attempts that waited for a container, named if a
// runtime answered, and renames the alerts that went out by id alone once
// the late answer comes.
func (p *Pusher) answered(a answer) {
	w := p.waiting[a.containerID]
	if w == nil {
		return
	}
	named := a.presence == identity.Present
	if !a.catchUp {
		for _, e := range w.events {
			if named {
				e.Identity = a.ident
			}
			p.fold(e)
		}
		w.events = nil
		switch a.presence {
		case identity.Unanswered:
			w.anonymous = true
			p.logger.Warn("escape alert pushed with container_id alone: no container runtime answered in time; it is renamed once one does",
				"container_id", a.containerID, "waited", p.cfg.IdentityWait)
		default:
			delete(p.waiting, a.containerID)
		}
		return
	}
	delete(p.waiting, a.containerID)
	if !named {
		p.logger.Warn("escape alert stays without a name: no container runtime answered before it ended", "container_id", a.containerID)
		return
	}
	n := p.rename(a.containerID, a.ident)
	p.logger.Info("escape alert renamed: a container runtime answered", "container_id", a.containerID,
		"name", a.ident.Name, "image", a.ident.Image, "namespace", a.ident.Namespace, "pod", a.ident.Pod, "alerts", n)
}

// rename ends each alert that names a container by id alone and opens the
// alert with its identity in its place, carrying its start and its
// attempts: Alertmanager resolves the one and fires the other, and no
// attempt is counted twice or lost. It returns how many alerts it renamed.
func (p *Pusher) rename(cid string, ident identity.Identity) int {
	now := p.now()
	n := 0
	for key, f := range p.folds {
		if f.event.Identity.ContainerID != cid || !unnamed(f.event.Identity) {
			continue
		}
		e := f.event
		e.Identity = ident
		p.end(key, f, now, e)
		delete(p.folds, key)
		n++
		if !slices.Contains(p.policy.alertNames(e), f.name) {
			continue // the name puts it under an exclusion: it only ends
		}
		labels := p.policy.alertLabels(f.name, e, p.external)
		nk := model.LabelsToSignature(labels)
		g := p.folds[nk]
		if g == nil {
			g = &fold{name: f.name, labels: labels, first: f.first, last: f.last, event: e}
			p.folds[nk] = g
		} else {
			g.first = minTime(g.first, f.first)
			if f.last.After(g.last) {
				g.last, g.event = f.last, e
			}
		}
		g.count += f.count
		p.send(nk, g, time.Time{})
	}
	return n
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
