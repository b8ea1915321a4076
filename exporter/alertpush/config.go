package alertpush

import (
	"net/url"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/rules"
)

// Config is the pusher's configuration, filled by AddFlags.
type Config struct {
	URLs           []*url.URL
	Timeout        time.Duration
	HTTPConfigFile string
	QueueCapacity  int
	FoldWindow     time.Duration
	ResolveTimeout time.Duration
	ResendDelay    time.Duration
	ExternalLabels map[string]string
	// RulesConfigFile is the rule pack's configuration (rules.Load); Rules,
	// when set, is used instead (tests). Neither: the pack's defaults.
	RulesConfigFile string
	Rules           *rules.Config

	// IdentityWait is how long an attempt of a container no runtime has
	// named yet waits for one to answer before its alert goes out with
	// container_id alone (and is renamed once one answers). Identities
	// asks them; nil pushes what the event carries.
	IdentityWait time.Duration
	Identities   *identity.Resolver
	// State keeps the alerts not yet delivered across restarts; nil or a
	// Dir without a path keeps them in memory only.
	State *statefile.Dir

	// Retry backoff after a failed delivery, doubling from MinBackoff up to
	// MaxBackoff. Not flags: operators tune timeouts, tests shorten these.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// Enabled reports whether any Alertmanager is configured.
func (c *Config) Enabled() bool { return c != nil && len(c.URLs) > 0 }

// AddFlags registers the --alertmanager.* flags on app.
func AddFlags(app *kingpin.Application) *Config {
	c := &Config{
		ExternalLabels: map[string]string{},
		MinBackoff:     100 * time.Millisecond,
		MaxBackoff:     10 * time.Second,
	}
	app.Flag("alertmanager.url",
		"Alertmanager to push escape alerts to, e.g. http://alertmanager:9093 (repeatable: every Alertmanager of an HA cluster gets every alert). Without it nothing is pushed.").
		URLListVar(&c.URLs)
	app.Flag("alertmanager.timeout", "Timeout of one push to an Alertmanager.").
		Default("10s").DurationVar(&c.Timeout)
	app.Flag("alertmanager.config.file",
		"Optional HTTP client configuration (TLS, basic auth, bearer token, proxy) for the Alertmanager API, in the Prometheus http_config format.").
		PlaceHolder("FILE").StringVar(&c.HTTPConfigFile)
	app.Flag("alertmanager.queue-capacity",
		"Alerts waiting per Alertmanager (and events waiting to be folded); what does not fit is dropped and counted.").
		Default("10000").IntVar(&c.QueueCapacity)
	app.Flag("alertmanager.fold-window",
		"Attempts of one container and technique closer than this fold into one alert whose attempts annotation counts them; the folded alert is re-sent at most once per window.").
		Default("30s").DurationVar(&c.FoldWindow)
	app.Flag("alertmanager.resolve-timeout",
		"A pushed alert ends this long after the last attempt it folds, so it resolves by itself.").
		Default("5m").DurationVar(&c.ResolveTimeout)
	app.Flag("alertmanager.resend-delay",
		"Active alerts are re-sent this often, so an Alertmanager that restarted (it keeps no alerts on disk) learns them again.").
		Default("1m").DurationVar(&c.ResendDelay)
	app.Flag("alertmanager.identity-wait",
		"How long an escape alert about a container no runtime has named yet waits for one to answer (a runtime restarting); past it the alert goes out with container_id alone, and is replaced by the named alert once a runtime answers.").
		Default("2s").DurationVar(&c.IdentityWait)
	app.Flag("alertmanager.external-label",
		"Label added to every pushed alert, e.g. job=breakwater or instance=node1:9760, so pushed alerts carry the labels of the rule alerts (repeatable).").
		PlaceHolder("NAME=VALUE").StringMapVar(&c.ExternalLabels)
	app.Flag("alertmanager.rules-config",
		"The rule pack's configuration, as given to rules/generate -config or the Helm chart's rules values: pushed alerts take their severities, exclusions, container selector, runbook and dashboard URLs from it, so they stay one alert with the evaluated ones. Default: the pack's defaults.").
		PlaceHolder("FILE").StringVar(&c.RulesConfigFile)
	return c
}
