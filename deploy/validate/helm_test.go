package validate

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/exporter-toolkit/web"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/breakwater/breakwater/internal/testenv"
	"github.com/breakwater/breakwater/rules"
)

const chartDir = "../helm/breakwater"

// renderFiles renders the chart as `helm install name --namespace ns`
// would, with values given as YAML, and returns the rendered templates.
func renderFiles(t *testing.T, name, ns, values string) map[string]string {
	t.Helper()
	out, err := tryRender(name, ns, values)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// monitoringAPIs are prometheus-operator's kinds the chart checks for, as a
// cluster with its CRDs serves them.
var monitoringAPIs = chartutil.VersionSet{
	"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor",
	"monitoring.coreos.com/v1/PodMonitor", "monitoring.coreos.com/v1/PrometheusRule",
}

func tryRender(name, ns, values string) (map[string]string, error) {
	return tryRenderWith(name, ns, values, monitoringAPIs)
}

// tryRenderWith renders on a cluster that serves the built-in APIs and extra.
func tryRenderWith(name, ns, values string, extra chartutil.VersionSet) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		return nil, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.APIVersions = append(slices.Clone(caps.APIVersions), extra...)
	// ToRenderValues validates the values against values.schema.json, as
	// helm install and helm template do.
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: name, Namespace: ns, IsInstall: true, Revision: 1}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// render renders the chart and strictly decodes the output.
func render(t *testing.T, name, ns, values string) []Object {
	t.Helper()
	out := renderFiles(t, name, ns, values)
	var files []string
	for f := range out {
		if strings.HasSuffix(f, ".yaml") {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	var objs []Object
	for _, f := range files {
		o, err := Decode([]byte(out[f]))
		if err != nil {
			t.Fatalf("%s: %v\n%s", f, err, out[f])
		}
		objs = append(objs, o...)
	}
	return objs
}

func TestHelmLint(t *testing.T) {
	for name, values := range map[string]map[string]any{"defaults": nil, "full": readValues(t, fullValues)} {
		lint := action.NewLint()
		lint.Strict = true
		lint.Namespace = "breakwater"
		res := lint.Run([]string{chartDir}, values)
		for _, m := range res.Messages {
			t.Logf("%s: %s", name, m)
		}
		if len(res.Errors) > 0 {
			t.Errorf("%s: helm lint: %v", name, res.Errors)
		}
	}
}

// TestHelmDefaults: the chart's defaults are the plain manifests.
func TestHelmDefaults(t *testing.T) {
	objs := render(t, "breakwater", "breakwater", "")
	checkObjects(t, objs, expect{namespace: "breakwater", job: "breakwater"})
	plain := plainObjects(t)

	ds := must(Only[*appsv1.DaemonSet](objs))(t)
	pds := must(Only[*appsv1.DaemonSet](plain))(t)
	if ds.Name != "breakwater" || ds.Namespace != "breakwater" {
		t.Errorf("daemonset %s/%s", ds.Namespace, ds.Name)
	}
	ds.Spec.Template.Spec.ServiceAccountName = pds.Spec.Template.Spec.ServiceAccountName
	if !reflect.DeepEqual(ds.Spec.Template.Spec, pds.Spec.Template.Spec) {
		a, _ := yaml.Marshal(pds.Spec.Template.Spec)
		b, _ := yaml.Marshal(ds.Spec.Template.Spec)
		t.Errorf("the chart's pod spec differs from deploy/kubernetes/daemonset.yaml:\n--- plain\n%s\n--- chart\n%s", a, b)
	}
	if !reflect.DeepEqual(ds.Spec.UpdateStrategy, pds.Spec.UpdateStrategy) {
		t.Errorf("update strategy %+v, plain %+v", ds.Spec.UpdateStrategy, pds.Spec.UpdateStrategy)
	}

	sm := must(Only[*monitoringv1.ServiceMonitor](objs))(t)
	psm := must(Only[*monitoringv1.ServiceMonitor](plain))(t)
	if !reflect.DeepEqual(sm.Spec.Endpoints, psm.Spec.Endpoints) {
		t.Errorf("servicemonitor endpoints %+v, plain %+v", sm.Spec.Endpoints, psm.Spec.Endpoints)
	}
	pr := must(Only[*monitoringv1.PrometheusRule](objs))(t)
	ppr := must(Only[*monitoringv1.PrometheusRule](plain))(t)
	if !reflect.DeepEqual(pr.Spec, ppr.Spec) {
		t.Error("the chart's PrometheusRule differs from deploy/kubernetes/prometheusrule.yaml: run `make rules` and `go run ./deploy/helm/generate`")
	}
	for _, o := range objs {
		if o.GVK.Kind == "Secret" || o.GVK.Kind == "ConfigMap" {
			t.Errorf("defaults render a %s %s", o.GVK.Kind, o.Name)
		}
	}
	checkPrometheusRBAC(t, objs)
	role, prole := must(Only[*rbacv1.Role](objs))(t), must(Only[*rbacv1.Role](plain))(t)
	if !reflect.DeepEqual(role.Rules, prole.Rules) {
		t.Errorf("the chart's Role differs from deploy/kubernetes/prometheus-role.yaml")
	}
}

// fullValues sets every value that becomes a flag, a Secret or a mount.
const fullValues = `
web:
  port: 9100
  telemetryPath: /metrics
  maxRequests: 10
  config:
    tls_server_config:
      cert_file: /etc/breakwater/web/tls.crt
      key_file: /etc/breakwater/web/tls.key
    basic_auth_users:
      prometheus: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG
log: {level: debug, format: json}
collectors:
  security: {enabled: true, host: true, expiry: 10m, maxContainers: 2048, deniedBudget: 64, eventInterval: 5ms, learningPeriod: 2h, stateHostPath: /srv/breakwater}
  resources: {enabled: true, metrics: "cpu,memory,oom_event,network", allCgroups: true, housekeepingInterval: 15s, dockerEvents: false}
runtime:
  containerd: {enabled: true}
  crio: {enabled: true}
  docker: {enabled: true}
alertmanager:
  urls: [http://alertmanager-0.monitoring:9093, http://alertmanager-1.monitoring:9093]
  timeout: 5s
  httpConfig:
    basic_auth: {username: breakwater, password_file: /etc/breakwater/alertmanager/password}
  externalLabels: {cluster: prod-eu}
extraArgs: [--alertmanager.fold-window=1m]
serviceMonitor:
  labels: {release: kube-prometheus-stack}
  scheme: https
  tlsConfig: {insecureSkipVerify: true}
  basicAuth:
    username: {name: breakwater-scrape, key: username}
    password: {name: breakwater-scrape, key: password}
  metricRelabelings:
  - action: drop
    sourceLabels: [__name__]
    regex: go_.*
dashboards:
  enabled: true
priorityClassName: system-node-critical
`

func readValues(t *testing.T, s string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestHelmFull renders every value and runs the exporter's own flag parser
// over the arguments, validates the Secrets with the libraries that read
// them, and checks the dashboards ConfigMap against dashboards/.
func TestHelmFull(t *testing.T) {
	objs := render(t, "bw", "monitoring", fullValues)
	checkObjects(t, objs, expect{namespace: "monitoring", job: "breakwater", docker: true, crio: true, state: "/srv/breakwater"})
	ds := must(Only[*appsv1.DaemonSet](objs))(t)
	c := ds.Spec.Template.Spec.Containers[0]
	if ds.Name != "bw-breakwater" {
		t.Errorf("daemonset name %q", ds.Name)
	}

	// Every argument is a flag of the exporter.
	cmd := exec.Command(exporterBinary(t), append(slices.Clone(c.Args), "--version")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the exporter rejects the chart's arguments %q: %v\n%s", c.Args, err, out)
	}
	for _, want := range []string{
		"--web.config.file=/etc/breakwater/web/web-config.yml",
		"--alertmanager.config.file=/etc/breakwater/alertmanager/alertmanager-http.yml",
		"--alertmanager.external-label=instance=$(NODE_NAME)",
		"--alertmanager.external-label=job=breakwater",
		"--alertmanager.external-label=cluster=prod-eu",
		"--no-collector.resources.docker-events",
		"--collector.security.host",
		"--collector.security.event-interval=5ms",
		"--collector.security.denied-budget=64",
		"--collector.security.learning-period=2h",
		"--runtime.docker-host=unix:///var/run/docker.sock",
		"--runtime.cri-socket=/run/crio/crio.sock",
		"--alertmanager.fold-window=1m",
	} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args lack %s: %q", want, c.Args)
		}
	}
	if len(c.Env) != 1 || c.Env[0].Name != "NODE_NAME" || c.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("env %+v: NODE_NAME from spec.nodeName is needed for $(NODE_NAME)", c.Env)
	}
	if c.LivenessProbe.TCPSocket == nil || c.ReadinessProbe.TCPSocket == nil {
		t.Error("with TLS and basic auth the probes must only check the port")
	}

	// The Secrets are what the exporter's libraries accept.
	secrets := map[string]*corev1.Secret{}
	for _, o := range objs {
		if s, ok := o.Obj.(*corev1.Secret); ok {
			secrets[s.Name] = s
		}
	}
	dir := t.TempDir()
	webCfg := filepath.Join(dir, "web-config.yml")
	writeFile(t, webCfg, secrets["bw-breakwater-web"].StringData["web-config.yml"])
	// The TLS files the config names exist in the pod, not here: point them
	// at a real pair for validation.
	pki := testenv.NewPKI(t, dir)
	cert, key := pki.CertFile, pki.KeyFile
	b, _ := os.ReadFile(webCfg)
	b = bytes.ReplaceAll(b, []byte("/etc/breakwater/web/tls.crt"), []byte(cert))
	b = bytes.ReplaceAll(b, []byte("/etc/breakwater/web/tls.key"), []byte(key))
	writeFile(t, webCfg, string(b))
	if err := web.Validate(webCfg); err != nil {
		t.Errorf("web config Secret: %v", err)
	}
	amCfg := secrets["bw-breakwater-alertmanager"].StringData["alertmanager-http.yml"]
	if _, err := commoncfg.LoadHTTPConfig(amCfg); err != nil {
		t.Errorf("alertmanager http config Secret: %v\n%s", err, amCfg)
	}
	if len(secrets) != 2 {
		t.Errorf("secrets %v", secrets)
	}

	sm := must(Only[*monitoringv1.ServiceMonitor](objs))(t)
	if sm.Labels["release"] != "kube-prometheus-stack" || sm.Spec.Endpoints[0].Scheme == nil || len(sm.Spec.Endpoints[0].MetricRelabelConfigs) != 1 {
		t.Errorf("servicemonitor values not applied: %+v", sm)
	}

	configMaps := map[string]*corev1.ConfigMap{}
	for _, o := range objs {
		if c, ok := o.Obj.(*corev1.ConfigMap); ok {
			configMaps[c.Name] = c
		}
	}
	// The push reads the rules values the PrometheusRule is rendered from.
	rc := configMaps["bw-breakwater-rules"]
	if rc == nil {
		t.Fatalf("no rules ConfigMap for the push: %v", configMaps)
	}
	pushed, err := rules.Parse([]byte(rc.Data["rules.yml"]))
	if err != nil {
		t.Errorf("the push's rules config does not load: %v\n%s", err, rc.Data["rules.yml"])
	}
	if pushed.Selector != `job="breakwater"` || !reflect.DeepEqual(pushed.EscapeAttempt, rules.Default().EscapeAttempt) {
		t.Errorf("the push's rules config: selector %q, escapeAttempt %+v", pushed.Selector, pushed.EscapeAttempt)
	}
	if !slices.Contains(c.Args, "--alertmanager.rules-config=/etc/breakwater/rules/rules.yml") {
		t.Errorf("args lack --alertmanager.rules-config: %q", c.Args)
	}
	cm := configMaps["bw-breakwater-dashboards"]
	if cm == nil {
		t.Fatalf("no dashboards ConfigMap: %v", configMaps)
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboards configmap labels %v", cm.Labels)
	}
	files, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "dashboards", "*.json"))
	if len(files) == 0 || len(cm.Data) != len(files) {
		t.Errorf("configmap has %d dashboards, dashboards/ %d", len(cm.Data), len(files))
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got := cm.Data[filepath.Base(f)]
		if got != string(want) {
			t.Errorf("%s in the chart differs from dashboards/: run `go run ./deploy/helm/generate`", filepath.Base(f))
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s is not JSON", filepath.Base(f))
		}
	}
}

func TestHelmOptionalObjects(t *testing.T) {
	objs := render(t, "breakwater", "breakwater", `
serviceMonitor: {enabled: false}
prometheusRule: {enabled: false}
prometheusRBAC: {create: false}
serviceAccount: {create: false}
runtime: {containerd: {enabled: false}}
collectors: {security: {enabled: false}, resources: {enabled: false}}
`)
	for _, o := range objs {
		switch o.GVK.Kind {
		case "ServiceMonitor", "PrometheusRule", "ServiceAccount", "Role", "RoleBinding":
			t.Errorf("%s rendered although disabled", o.GVK.Kind)
		}
	}
	ds := must(Only[*appsv1.DaemonSet](objs))(t)
	spec := ds.Spec.Template.Spec
	if spec.ServiceAccountName != "default" || len(spec.Volumes) != 2 {
		t.Errorf("service account %q, volumes %v", spec.ServiceAccountName, spec.Volumes)
	}
	if args := spec.Containers[0].Args; !slices.Contains(args, "--no-collector.security") || !slices.Contains(args, "--no-collector.resources") {
		t.Errorf("args %q", args)
	}

	// Without a state hostPath the learned profiles live as long as the pod.
	ds = must(Only[*appsv1.DaemonSet](render(t, "breakwater", "breakwater", `collectors: {security: {stateHostPath: ""}}`)))(t)
	found := false
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Name == "state" {
			found = true
			if v.EmptyDir == nil {
				t.Errorf("stateHostPath empty: the state volume should be an emptyDir, got %+v", v.VolumeSource)
			}
		}
	}
	if !found {
		t.Error("no state volume with the security collector on")
	}
}

// TestChartFilesCurrent: the chart's rule template is the pack's.
// deploy/helm/generate's own test checks every generated file of the chart.
func TestChartFilesCurrent(t *testing.T) {
	got, err := os.ReadFile(filepath.Join(chartDir, "templates", "_rules.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, rules.HelmTemplate()) {
		t.Error("deploy/helm/breakwater/templates/_rules.tpl differs from rules.HelmTemplate(): run `go run ./deploy/helm/generate`")
	}
}

var (
	exporterOnce sync.Once
	exporterPath string
	exporterErr  error
)

// exporterBinary builds cmd/breakwater once per test binary.
func exporterBinary(t *testing.T) string {
	t.Helper()
	exporterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bw-deploy-")
		if err != nil {
			exporterErr = err
			return
		}
		exporterPath = filepath.Join(dir, "breakwater")
		cmd := exec.Command("go", "build", "-o", exporterPath, "./cmd/breakwater")
		cmd.Dir = testenv.RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			exporterErr = err
			exporterPath = string(out)
		}
	})
	if exporterErr != nil {
		t.Fatalf("building the exporter: %v\n%s", exporterErr, exporterPath)
	}
	return exporterPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if exporterPath != "" && exporterErr == nil {
		os.RemoveAll(filepath.Dir(exporterPath))
	}
	os.Exit(code)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
