package validate

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// namespaceOf is an object's metadata.namespace.
func namespaceOf(o Object) string {
	if m, ok := o.Obj.(metav1.Object); ok {
		return m.GetNamespace()
	}
	return ""
}

// valuesFiles are the chart's values matrix: its ci/ files (chart-testing's
// convention) and its presets.
func valuesFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"ci", "presets"} {
		f, err := filepath.Glob(filepath.Join(chartDir, dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f...)
	}
	if len(files) < 4 {
		t.Fatalf("values matrix %v: the ci/ files or the preset are missing", files)
	}
	return files
}

// TestHelmValuesMatrix lints every values file of the matrix strictly and
// renders it, every object strictly decoded into its k8s.io/api or
// prometheus-operator type (render does).
func TestHelmValuesMatrix(t *testing.T) {
	for _, f := range valuesFiles(t) {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = "monitoring"
			res := lint.Run([]string{chartDir}, readValues(t, string(b)))
			if len(res.Errors) > 0 {
				t.Errorf("helm lint: %v", res.Errors)
			}
			objs := render(t, "breakwater", "monitoring", string(b))
			must(Only[*appsv1.DaemonSet](objs))(t)

			// What `helm template --kube-version 1.33 --api-versions ...`
			// prints, through helm's own action: every object strictly decoded.
			manifest := helmTemplate(t, string(b), "1.33.0")
			tobjs, err := Decode([]byte(manifest))
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, manifest)
			}
			if len(tobjs) != len(objs) {
				t.Errorf("helm template renders %d objects, the engine %d", len(tobjs), len(objs))
			}
		})
	}
}

// helmTemplate runs helm's install action client-only, as `helm template`
// does, on a cluster of the given Kubernetes version serving the
// prometheus-operator kinds, and returns the manifest.
func helmTemplate(t *testing.T, values, kubeVersion string) string {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	inst := action.NewInstall(cfg)
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
	inst.ReleaseName, inst.Namespace = "breakwater", "monitoring"
	inst.KubeVersion, inst.APIVersions = kv, monitoringAPIs
	rel, err := inst.Run(ch, readValues(t, values))
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return rel.Manifest
}

// TestHelmPodMonitorAndPodSettings: the settings node-exporter's chart users
// expect reach the objects.
func TestHelmPodMonitorAndPodSettings(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "ci", "podmonitor-hostnetwork-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t, "breakwater", "monitoring", string(b))
	for _, o := range objs {
		if ns := namespaceOf(o); ns != "observability" {
			t.Errorf("%s %s in namespace %q, want namespaceOverride's observability", o.GVK.Kind, o.Name, ns)
		}
		if o.GVK.Kind == "ServiceMonitor" {
			t.Error("a ServiceMonitor next to the PodMonitor: every pod scraped twice")
		}
	}
	pm := must(Only[*monitoringv1.PodMonitor](objs))(t)
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port == nil || *pm.Spec.PodMetricsEndpoints[0].Port != "metrics" {
		t.Fatalf("podmonitor endpoints %+v", pm.Spec.PodMetricsEndpoints)
	}
	var job string
	for _, r := range pm.Spec.PodMetricsEndpoints[0].RelabelConfigs {
		if r.TargetLabel == "job" && r.Replacement != nil {
			job = *r.Replacement
		}
	}
	if job != "breakwater" {
		t.Errorf("podmonitor job %q, want breakwater (the rules select it)", job)
	}
	spec := must(Only[*appsv1.DaemonSet](objs))(t).Spec.Template.Spec
	c := spec.Containers[0]
	if !spec.HostNetwork || spec.DNSPolicy != "ClusterFirstWithHostNet" {
		t.Errorf("hostNetwork %v, dnsPolicy %q", spec.HostNetwork, spec.DNSPolicy)
	}
	if want := "registry.example.org/ghcr.io/breakwater/breakwater@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; c.Image != want {
		t.Errorf("image %q, want %q", c.Image, want)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMAXPROCS" && e.Value == "1" }) {
		t.Errorf("env %+v lacks extraEnv", c.Env)
	}
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "extra-ca" && v.ConfigMap != nil }) ||
		!slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "extra-ca" && m.MountPath == "/etc/ssl/extra" }) {
		t.Errorf("extraVolumes/extraVolumeMounts missing: %+v %+v", spec.Volumes, c.VolumeMounts)
	}
}

// TestHelmKubePrometheusStackPreset: the preset's values select the stack's
// Prometheus, bind its service account and leave out what it covers.
func TestHelmKubePrometheusStackPreset(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "presets", "kube-prometheus-stack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t, "breakwater", "monitoring", string(b))
	sm := must(Only[*monitoringv1.ServiceMonitor](objs))(t)
	pr := must(Only[*monitoringv1.PrometheusRule](objs))(t)
	for kind, l := range map[string]map[string]string{"ServiceMonitor": sm.Labels, "PrometheusRule": pr.Labels} {
		if l["release"] != "kube-prometheus-stack" {
			t.Errorf("%s labels %v: kube-prometheus-stack's Prometheus selects release=kube-prometheus-stack", kind, l)
		}
	}
	rb := must(Only[*rbacv1.RoleBinding](objs))(t)
	if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "kube-prometheus-stack-prometheus" || rb.Subjects[0].Namespace != "monitoring" {
		t.Errorf("rolebinding subjects %+v, want monitoring/kube-prometheus-stack-prometheus", rb.Subjects)
	}
	var alerts []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
			if r.Alert == "BreakwaterDown" && strings.Contains(r.Expr.String(), "== 0") {
				t.Errorf("BreakwaterDown still fires on a target that is down: %s", r.Expr.String())
			}
		}
	}
	for _, off := range []string{"ContainerCPUThrottled", "ContainerCrashLooping", "ContainerRestartingOften"} {
		if slices.Contains(alerts, off) {
			t.Errorf("the preset keeps %s, which kube-prometheus-stack covers", off)
		}
	}
	if !slices.Contains(alerts, "ContainerEscapeAttempt") || !slices.Contains(alerts, "BreakwaterDown") {
		t.Errorf("alerts %v", alerts)
	}
}

// TestHelmWithoutPrometheusOperator: on a cluster without the operator's
// CRDs the chart installs, without its monitoring objects, and says so.
func TestHelmWithoutPrometheusOperator(t *testing.T) {
	for _, values := range []string{"", "podMonitor: {enabled: true}"} {
		out, err := tryRenderWith("breakwater", "breakwater", values, nil)
		if err != nil {
			t.Fatalf("%q: %v", values, err)
		}
		for f, doc := range out {
			if strings.HasSuffix(f, ".yaml") && strings.Contains(doc, "monitoring.coreos.com") {
				t.Errorf("%q: %s renders a prometheus-operator object without its CRDs:\n%s", values, f, doc)
			}
		}
		if notes := out["breakwater/templates/NOTES.txt"]; !strings.Contains(notes, "no PrometheusRule kind") || !strings.Contains(notes, "Monitor kind") {
			t.Errorf("%q: NOTES do not say what was left out:\n%s", values, notes)
		}
	}
}

// TestHelmNullValues: a value nulled by --set or a values file (Helm then
// drops the key) is a schema error, never a template that crashes.
func TestHelmNullValues(t *testing.T) {
	for _, v := range []string{
		"rules: {cpuThrottled: null}",
		"rules: {escapeAttempt: {window: null}}",
		"image: null",
		"serviceMonitor: {jobName: null}",
		"web: null",
	} {
		_, err := tryRender("breakwater", "breakwater", v)
		if err == nil {
			t.Errorf("%s renders", v)
			continue
		}
		if !strings.Contains(err.Error(), "schema") || strings.Contains(err.Error(), "nil pointer") {
			t.Errorf("%s: %v, want a schema error", v, err)
		}
	}
	// Free-form maps and lists may be nulled: the defaults go.
	if _, err := tryRender("breakwater", "breakwater", "nodeSelector: null\ntolerations: null\nrules: {targetLabels: null, exclusions: null}"); err != nil {
		t.Errorf("nulling free-form values: %v", err)
	}
}
