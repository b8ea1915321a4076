// Command breakwater is the node exporter of container security counters
// (eBPF) and container resource metrics (cAdvisor).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/breakwater/breakwater/collectors"
	_ "github.com/breakwater/breakwater/collectors/resources" // registers the resources collector
	"github.com/breakwater/breakwater/collectors/security"
	"github.com/breakwater/breakwater/exporter/alertpush"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/internal/ia32"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	app := kingpin.CommandLine
	app.Name = "breakwater"
	app.Help = "Prometheus exporter of per-container eBPF security counters and cAdvisor resource metrics."
	app.Version(version.Print("breakwater"))
	app.HelpFlag.Short('h')
	app.UsageTemplate(usageTemplate)

	serveCmd := app.Command("serve", "Serve metrics (the default).").Default()
	checkCmd := app.Command("check", "Print which hooks this kernel supports and what coverage follows.")
	ia32Cmd := app.Command(ia32ProbeCommand, "Make one ia32 syscall (for check).").Hidden()
	profileCmd := app.Command("profile", "Print the seccomp profile learned for an image, from --collector.security.profile-dir: an allow-list of the syscalls its containers made.")
	profileImage := profileCmd.Flag("image", "The image whose profile to print.").Required().String()

	toolkitFlags := kingpinflag.AddFlags(app, ":9760")
	metricsPath := app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
	maxRequests := app.Flag("web.max-requests", "Maximum number of parallel scrape requests; 0 means no limit.").Default("40").Int()
	dockerHost := app.Flag("runtime.docker-host", "Docker engine address for container names and images (default: the first of "+
		strings.Join(identity.DockerSockets, ", ")+" that exists).").String()
	criEndpoint := app.Flag("runtime.containerd-socket", "containerd socket for Kubernetes (CRI) container labels (default: the first of "+
		strings.Join(identity.ContainerdSockets, ", ")+" that exists).").String()
	criSocket := app.Flag("runtime.cri-socket", "CRI runtime socket (CRI-O) asked through the CRI API for containers neither Docker nor containerd knows (default: the first of "+
		strings.Join(identity.CRISockets, ", ")+" that exists, else none).").String()

	amConfig := alertpush.AddFlags(app)

	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "breakwater: %v\n", err)
		return 2
	}
	logger := slog.New(plainErrors{promslog.New(logConfig).Handler()})
	// A socket path is what most people write: the Docker client wants a URL.
	if strings.HasPrefix(*dockerHost, "/") {
		*dockerHost = "unix://" + *dockerHost
	}

	switch cmd {
	case checkCmd.FullCommand():
		return check(os.Stdout, identity.NewResolver(logger, identity.Options{DockerHost: *dockerHost, CRIEndpoint: *criEndpoint, CRISocket: *criSocket}), security.ProfileDir())
	case ia32Cmd.FullCommand():
		ia32.Probe()
		return 0
	case profileCmd.FullCommand():
		out, learning, err := security.ExportProfile(security.ProfileDir(), *profileImage)
		if err != nil {
			fmt.Fprintf(os.Stderr, "breakwater: %v\n", err)
			return 1
		}
		if learning {
			fmt.Fprintf(os.Stderr, "breakwater: %s is still learning: the profile may lack calls its containers have not made yet\n", *profileImage)
		}
		fmt.Println(string(out))
		return 0
	case serveCmd.FullCommand():
	}

	// Fail fast on a bad web config, before any program is loaded.
	if f := *toolkitFlags.WebConfigFile; f != "" {
		if err := web.Validate(f); err != nil {
			logger.Error("invalid --web.config.file", "file", f, "err", err)
			return 2
		}
	}

	logger.Info("starting breakwater", "version", version.Info(), "build_context", version.BuildContext())
	health := &collectors.Health{}
	resolver := identity.NewResolver(logger, identity.Options{DockerHost: *dockerHost, CRIEndpoint: *criEndpoint, CRISocket: *criSocket})
	state := statefile.New(security.ProfileDir())
	deps := collectors.Deps{Logger: logger, Identity: resolver, Health: health, State: state}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	if amConfig.Enabled() {
		amConfig.Identities, amConfig.State = resolver, state
		pusher, err := alertpush.New(logger, amConfig)
		if err != nil {
			logger.Error("invalid Alertmanager settings", "err", err)
			return 2
		}
		reg.MustRegister(pusher)
		go pusher.Run(ctx)
		deps.Escapes = pusher
	}

	// cAdvisor's Docker and containerd factories read their own Go flags,
	// not ours: they ask the runtimes the resolver found.
	for name, v := range map[string]string{"docker": resolver.DockerHost(), "containerd": resolver.ContainerdSocket()} {
		if err := flag.Set(name, v); err != nil {
			logger.Warn("cAdvisor ignores the runtime socket", "flag", name, "err", err)
		}
	}
	set := collectors.New(deps)
	defer func() {
		if err := set.Close(); err != nil {
			logger.Error("closing collectors", "err", err)
		}
		logger.Info("collectors closed; BPF programs detached")
	}()
	if sec, ok := set.Get(security.Name); ok {
		for _, name := range collectors.Names() {
			if l, ok := set.Get(name); ok {
				if listener, ok := l.(security.CgroupListener); ok {
					sec.(*security.Collector).AddListener(listener)
				}
			}
		}
	}

	// One line that says everything this node cannot see, besides the
	// lines where each part found out.
	if problems := health.Problems(); len(problems) > 0 {
		logger.Warn("running degraded", "parts", problems)
	}

	reg.MustRegister(set, state, versioncollector.NewCollector("breakwater"),
		promcollectors.NewGoCollector(), promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	if sec, ok := set.Get(security.Name); ok {
		profiles := sec.(*security.Collector).ProfileHandler()
		mux.Handle("/profiles", profiles)
		mux.Handle("/profiles/", profiles)
	}
	mux.Handle(*metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: *maxRequests,
		Registry:            reg,
	}))
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "breakwater",
			Description: "Per-container eBPF security counters and cAdvisor resource metrics",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: *metricsPath, Text: "Metrics"}, {Address: "/profiles", Text: "Syscall profiles"}},
		})
		if err != nil {
			logger.Error("building landing page", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}

	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(server, toolkitFlags, logger) }()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serving metrics", "err", err)
			return 1
		}
	case <-ctx.Done():
		logger.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
	}
	return 0
}
