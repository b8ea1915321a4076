package alertpush

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/exporter/escape"
)

// quantile is the upper bound of the histogram bucket holding quantile q.
func quantile(h *dto.Histogram, q float64) float64 {
	rank := q * float64(h.GetSampleCount())
	for _, b := range h.GetBucket() {
		if float64(b.GetCumulativeCount()) >= rank {
			return b.GetUpperBound()
		}
	}
	return -1
}

// TestPushLatency pushes 200 attempts of distinct containers, 5ms apart, to
// a real Alertmanager and checks the pusher's own share of the page's
// latency, event to API accepted, against the 1s target of the whole path.
func TestPushLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))
	p := startPusher(t, testConfig(am.URL()))

	const n = 200
	for i := range n {
		p.Push(containerEvent(i, "proc_sys_write", escape.Blocked))
		time.Sleep(5 * time.Millisecond)
	}
	amtest.Eventually(t, 30*time.Second, "every alert accepted", func() bool { return p.latencyCount() == n })
	m := &dto.Metric{}
	if err := p.latency.Write(m); err != nil {
		t.Fatal(err)
	}
	h := m.GetHistogram()
	p50, p99 := quantile(h, 0.5), quantile(h, 0.99)
	t.Logf("event to Alertmanager accepted, %d alerts: p50 <= %.4fs, p99 <= %.4fs, mean %.4fs",
		n, p50, p99, h.GetSampleSum()/float64(n))
	if p99 > 1 {
		t.Errorf("p99 %.3fs above the 1s target", p99)
	}
}
