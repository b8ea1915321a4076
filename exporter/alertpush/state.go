package alertpush

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/common/model"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/internal/names"
)

// StateFile keeps, in the state directory, the alerts no Alertmanager has
// accepted yet and the attempts still waiting for a name, so that a
// restart of the exporter (a rolling update, an OOM kill, kill -9) loses
// at most the last second of them.
const StateFile = "alertpush.json"

const stateVersion = 1

type stateFile struct {
	Version int `json:"version"`
	// Pending are the alerts not yet accepted, by Alertmanager (its
	// redacted URL), oldest first.
	Pending map[string][]savedItem `json:"pending"`
	Waiting []escape.Event         `json:"waiting,omitempty"`
}

type savedItem struct {
	Alert     *models.PostableAlert `json:"alert"`
	EndsAt    time.Time             `json:"ends_at"`
	EventTime time.Time             `json:"event_time,omitzero"`
}

func decodeState(b []byte, f *stateFile) error {
	if err := json.Unmarshal(b, f); err != nil {
		return fmt.Errorf("not a breakwater alert state: %w", err)
	}
	if f.Version != stateVersion {
		return fmt.Errorf("alert state of version %d, want %d", f.Version, stateVersion)
	}
	return nil
}

// CheckState says what `breakwater check` reports of the alert state in
// dir.
func CheckState(dir string) string {
	return statefile.Inspect(dir, StateFile, func(b []byte) error { return decodeState(b, &stateFile{}) })
}

// restore queues what the previous run left undelivered. Alerts that ended
// meanwhile, and those of an Alertmanager no longer configured, are
// dropped and counted; the queue's bound drops the oldest.
func (p *Pusher) restore() {
	var f stateFile
	found, err := p.cfg.State.Load(StateFile, func(b []byte) error { return decodeState(b, &f) })
	if err != nil {
		p.logger.Error("undelivered escape alerts not restored", "err", err)
		return
	}
	if !found {
		return
	}
	now := p.now()
	restored, dropped := 0, 0
	for url, items := range f.Pending {
		var t *target
		for _, c := range p.targets {
			if c.url == url {
				t = c
			}
		}
		for _, s := range items {
			if t == nil || s.Alert == nil || !now.Before(s.EndsAt) {
				dropped++
				continue
			}
			it := &item{key: model.LabelsToSignature(s.Alert.Labels), alert: s.Alert, endsAt: s.EndsAt, eventTime: s.EventTime}
			if t.enqueue(it, p.cfg.QueueCapacity) {
				dropped++
			}
			restored++
		}
	}
	p.restored = f.Waiting
	p.notifications.WithLabelValues(names.PushDropped).Add(float64(dropped))
	p.logger.Info("escape alerts restored from the last run", "file", p.cfg.State.Path(StateFile),
		"alerts", restored, "waiting_for_a_name", len(f.Waiting), "dropped_as_ended_or_unconfigured", dropped)
	p.stateChanged()
}

// stateChanged marks the state file as behind what is pending.
func (p *Pusher) stateChanged() { p.stateDirty.Store(true) }

// saveState writes what is pending when it changed; with nothing pending
// the file goes. Only Run's goroutine calls it.
func (p *Pusher) saveState() {
	if p.cfg.State.Path(StateFile) == "" || !p.stateDirty.Swap(false) {
		return
	}
	f := stateFile{Version: stateVersion, Pending: map[string][]savedItem{}}
	for _, w := range p.waiting {
		f.Waiting = append(f.Waiting, w.events...)
	}
	n := len(f.Waiting)
	for _, t := range p.targets {
		t.mu.Lock()
		items := make([]*item, 0, len(t.pending))
		for _, it := range t.pending {
			items = append(items, it)
		}
		t.mu.Unlock()
		sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
		for _, it := range items {
			f.Pending[t.url] = append(f.Pending[t.url], savedItem{Alert: it.alert, EndsAt: it.endsAt, EventTime: it.eventTime})
		}
		n += len(items)
	}
	var err error
	switch {
	case n == 0 && p.savedEmpty:
	case n == 0:
		err = p.cfg.State.Remove(StateFile)
	default:
		var b []byte
		if b, err = json.Marshal(f); err == nil {
			err = p.cfg.State.Save(StateFile, b)
		}
	}
	switch {
	case err != nil && p.saveErr == nil:
		p.logger.Error("saving undelivered escape alerts failed: a restart would lose them", "file", p.cfg.State.Path(StateFile), "err", err)
	case err == nil && p.saveErr != nil:
		p.logger.Info("saving undelivered escape alerts works again", "file", p.cfg.State.Path(StateFile))
	}
	p.saveErr = err
	if err != nil {
		p.stateChanged() // try again at the next tick
		return
	}
	p.savedEmpty = n == 0
}
