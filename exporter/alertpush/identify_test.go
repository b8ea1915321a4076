package alertpush

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// engineSocket is the Docker engine as the resolver sees it, behind a
// socket the test takes down and brings back: an engine outage from the
// exporter's side, without restarting the shared engine.
type engineSocket struct {
	t    *testing.T
	path string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newEngineSocket(t *testing.T) *engineSocket {
	s := &engineSocket{t: t, path: filepath.Join(t.TempDir(), "docker.sock")}
	t.Cleanup(s.down)
	return s
}

func (s *engineSocket) up() {
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e, err := net.Dial("unix", "/var/run/docker.sock")
			if err != nil {
				c.Close()
				continue
			}
			s.mu.Lock()
			s.conns = append(s.conns, c, e)
			s.mu.Unlock()
			go func() { _, _ = io.Copy(e, c); e.Close() }()
			go func() { _, _ = io.Copy(c, e); c.Close() }()
		}
	}()
}

func (s *engineSocket) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// TestAlertWaitsForTheContainersName: an attempt of a container the
// engine cannot name yet (the engine is restarting) is held for the
// identity wait. An engine back within it names the alert; one back later
// finds the alert sent by container_id alone, then ended and replaced by
// the named alert with the same start and attempts; one that stays down
// leaves a single alert by container_id, sent once the wait passed.
func TestAlertWaitsForTheContainersName(t *testing.T) {
	testenv.Docker(t)
	id := testenv.Container(t, "bw-outages-am", nil, "sleep", "300")
	const wait = time.Second
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))

	for _, tc := range []struct {
		name   string
		backIn time.Duration // 0: never
	}{
		{"engine back within the wait", wait / 2},
		{"engine back after the wait", 3 * wait},
		{"engine stays down", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine := newEngineSocket(t)
			cfg := testConfig(am.URL())
			cfg.ExternalLabels = map[string]string{"instance": tc.name}
			cfg.IdentityWait = wait
			cfg.Identities = identity.NewResolver(nil, identity.Options{DockerHost: "unix://" + engine.path,
				CRIEndpoint: filepath.Join(t.TempDir(), "no-containerd.sock")})
			p := startPusher(t, cfg)
			// What the collector has while the engine is away: the id.
			e := containerEvent(0, "mount", escape.Blocked)
			e.Identity = identity.Identity{ContainerID: id}
			e.Time = e.Time.Truncate(time.Millisecond) // Alertmanager's precision
			anonymous := testPolicy.alertLabels(names.AlertEscapeAttempt, e, cfg.ExternalLabels)
			named := e
			named.Identity = identity.Identity{ContainerID: id, Name: "bw-outages-am", Image: testenv.Image}
			namedLabels := testPolicy.alertLabels(names.AlertEscapeAttempt, named, cfg.ExternalLabels)
			path := "/am"
			of := func(labels map[string]string) []amtest.Alert {
				var out []amtest.Alert
				for _, a := range hook.Alerts(path) {
					if amtest.LabelsKey(a.Labels) == amtest.LabelsKey(labels) {
						out = append(out, a)
					}
				}
				return out
			}

			start := time.Now()
			p.Push(e)
			if tc.backIn > 0 {
				time.AfterFunc(tc.backIn, engine.up)
			}
			switch tc.backIn {
			case wait / 2:
				amtest.Eventually(t, 10*time.Second, "the named alert", func() bool { return len(of(namedLabels)) > 0 })
				t.Logf("attempt to the named alert notified: %s", time.Since(start).Round(time.Millisecond))
				if p.latencyCount() != 1 {
					t.Errorf("latency samples = %d, want 1", p.latencyCount())
				}
			default:
				amtest.Eventually(t, 10*time.Second, "the alert by container_id", func() bool { return len(of(anonymous)) > 0 })
				took := time.Since(start)
				t.Logf("attempt to the alert by container_id notified: %s", took.Round(time.Millisecond))
				if took < wait || took > wait+2*time.Second {
					t.Errorf("alert by container_id notified after %s, want the %s wait and at most 2s more", took, wait)
				}
			}
			if tc.backIn == 3*wait {
				amtest.Eventually(t, 15*time.Second, "the named alert and the end of the one by id", func() bool {
					ended := false
					for _, a := range of(anonymous) {
						ended = ended || a.Status == "resolved"
					}
					return ended && len(of(namedLabels)) > 0
				})
				a := of(namedLabels)[0]
				if a.Status != "firing" || !a.StartsAt.Equal(e.Time) || a.Annotations[names.AnnotationAttempts] != "1" {
					t.Errorf("named alert %s from %s with %s attempts; want firing, from the attempt's %s, 1 attempt",
						a.Status, a.StartsAt, a.Annotations[names.AnnotationAttempts], e.Time)
				}
			}
			if tc.backIn == 0 {
				time.Sleep(2 * time.Second)
				if got := len(of(anonymous)); got != 1 {
					t.Errorf("%d notifications of the alert by container_id, want 1", got)
				}
			}
			if tc.backIn != 3*wait && len(of(anonymous)) > 0 && tc.backIn != 0 {
				t.Errorf("an alert by container_id went out though the engine answered within the wait")
			}
			if got := p.count(names.PushDropped); got != 0 {
				t.Errorf("dropped = %v", got)
			}
		})
	}
}
