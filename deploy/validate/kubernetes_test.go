package validate

import (
	"cmp"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

const kubeDir = "../kubernetes"

// plainObjects decodes every object kustomization.yaml lists, and checks
// that it lists every manifest of the directory.
func plainObjects(t *testing.T) []Object {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kubeDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Namespace  string   `json:"namespace"`
		Resources  []string `json:"resources"`
	}
	if err := UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.Kind != "Kustomization" || k.Namespace != "breakwater" {
		t.Errorf("kustomization.yaml: kind %q namespace %q", k.Kind, k.Namespace)
	}
	files, _ := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	var manifests []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			manifests = append(manifests, base)
		}
	}
	if got, want := slices.Sorted(slices.Values(k.Resources)), manifests; !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml resources = %v, the directory has %v", got, want)
	}
	var objs []Object
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(kubeDir, r))
		if err != nil {
			t.Fatal(err)
		}
		o, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if len(o) != 1 {
			t.Fatalf("%s: %d objects, want one per file", r, len(o))
		}
		objs = append(objs, o...)
	}
	return objs
}

func TestKubernetesManifests(t *testing.T) {
	objs := plainObjects(t)
	checkObjects(t, objs, expect{namespace: "breakwater", job: "breakwater"})

	checkPrometheusRBAC(t, objs)
	ns := must(Only[*corev1.Namespace](objs))(t)
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace: pod security %q; host PID and hostPath need privileged", ns.Labels["pod-security.kubernetes.io/enforce"])
	}
	for _, o := range objs {
		if ns, ok := o.Obj.(interface{ GetNamespace() string }); ok && o.GVK.Kind != "Namespace" && o.GVK.Kind != "PrometheusRule" {
			if ns.GetNamespace() != "breakwater" {
				t.Errorf("%s %s: namespace %q", o.GVK.Kind, o.Name, ns.GetNamespace())
			}
		}
	}
}

// TestStrictDecodeRejects proves the decoder is strict: each broken manifest
// must fail.
func TestStrictDecodeRejects(t *testing.T) {
	ds, err := os.ReadFile(filepath.Join(kubeDir, "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sm, err := os.ReadFile(filepath.Join(kubeDir, "servicemonitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"unknown field":         strings.Replace(string(ds), "hostPID: true", "hostPID: true\n      hostPid: true", 1),
		"misplaced field":       strings.Replace(string(ds), "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: true\n          hostPID: true", 1),
		"wrong type":            strings.Replace(string(ds), "hostPID: true", "hostPID: yes-please", 1),
		"duplicate field":       strings.Replace(string(ds), "hostPID: true", "hostPID: true\n      hostPID: false", 1),
		"bad quantity":          strings.Replace(string(ds), "memory: 128Mi", "memory: lots", 1),
		"unknown kind":          "apiVersion: v1\nkind: Pdo\nmetadata:\n  name: x\n",
		"servicemonitor typo":   strings.Replace(string(sm), "scrapeTimeout:", "scrapeTimout:", 1),
		"servicemonitor action": strings.Replace(string(sm), "targetLabel: job", "targetLabel: job\n      tagetLabel: job", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if doc == string(ds) || doc == string(sm) {
				t.Fatal("the mutation did not apply")
			}
			if _, err := Decode([]byte(doc)); err == nil {
				t.Error("decoded without error")
			} else {
				t.Log(err)
			}
		})
	}
}

// expect is what the checks need to know of one rendering.
type expect struct {
	namespace string
	job       string
	docker    bool   // the Docker socket and data root are mounted
	crio      bool   // the CRI-O socket is mounted
	state     string // the learned profiles' host directory; default /var/lib/breakwater
}

// checkObjects holds the invariants of any breakwater deployment, plain or
// rendered: they are what docs/deploy.md promises.
func checkObjects(t *testing.T, objs []Object, want expect) {
	t.Helper()
	ds := must(Only[*appsv1.DaemonSet](objs))(t)
	svc := must(Only[*corev1.Service](objs))(t)
	pod := ds.Spec.Template

	if ds.Spec.Selector == nil || !subset(ds.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("daemonset: selector %v does not select its pods %v", ds.Spec.Selector, pod.Labels)
	}
	if !pod.Spec.HostPID {
		t.Error("daemonset: hostPID must be true: cgroup.procs lists host PIDs")
	}
	if pod.Spec.HostNetwork || pod.Spec.HostIPC {
		t.Error("daemonset: host network or IPC is not needed")
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("daemonset: breakwater needs no API token")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("daemonset: %d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("daemonset: no container securityContext")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("daemonset: privileged")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("daemonset: root filesystem must be read-only")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("daemonset: allowPrivilegeEscalation must be false")
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("daemonset: drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	if got := slices.Sorted(slices.Values(sc.Capabilities.Add)); !slices.Equal(got, Capabilities) {
		t.Errorf("daemonset: capabilities %v, want %v (docs/deploy.md says why each)", got, Capabilities)
	}
	if seccomp := pod.Spec.SecurityContext; seccomp == nil || seccomp.SeccompProfile == nil || seccomp.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("daemonset: pod seccomp profile must be RuntimeDefault")
	}
	// breakwater's own container only: the runtimes' default profiles
	// refuse bpf(2) without CAP_SYS_ADMIN on containerd < 1.7, Docker < 23.
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined {
		t.Error("daemonset: the container's seccomp profile must be Unconfined (docs/deploy.md)")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
			t.Errorf("daemonset: %s request %v limit %v", r, req.String(), lim.String())
		}
	}

	// Ports, probes and the Service agree on the named port.
	var metricsPort int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			metricsPort = p.ContainerPort
		}
	}
	if metricsPort == 0 {
		t.Fatal("daemonset: no port named metrics")
	}
	if !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasSuffix(a, "--web.listen-address=:"+itoa(metricsPort)) }) {
		t.Errorf("daemonset: args %v do not listen on the metrics port %d", c.Args, metricsPort)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		switch {
		case p == nil:
			t.Errorf("daemonset: no %s probe", name)
		case p.HTTPGet != nil && p.HTTPGet.Port.String() != "metrics",
			p.TCPSocket != nil && p.TCPSocket.Port.String() != "metrics":
			t.Errorf("daemonset: %s probe is not on the metrics port", name)
		}
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("service: clusterIP %q, want headless", svc.Spec.ClusterIP)
	}
	if !subset(svc.Spec.Selector, pod.Labels) {
		t.Errorf("service: selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("service: ports %+v", svc.Spec.Ports)
	}

	// Volumes: each mount has its volume, host paths are the documented
	// ones and nothing is writable.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	hostPaths := map[string]string{} // mount path -> host path
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			t.Errorf("daemonset: mount %s has no volume", m.Name)
			continue
		}
		if v.HostPath != nil {
			// Only the learned profiles' state directory is written.
			if !m.ReadOnly && m.MountPath != "/var/lib/breakwater" {
				t.Errorf("daemonset: host path %s is mounted writable", v.HostPath.Path)
			}
			hostPaths[m.MountPath] = v.HostPath.Path
		}
		delete(vols, m.Name)
	}
	for name := range vols {
		t.Errorf("daemonset: volume %s is not mounted", name)
	}
	wantPaths := map[string]string{
		"/sys/fs/cgroup":                  "/sys/fs/cgroup",
		"/sys/kernel/btf":                 "/sys/kernel/btf",
		"/run/containerd/containerd.sock": "/run/containerd/containerd.sock",
		"/var/lib/breakwater":             cmp.Or(want.state, "/var/lib/breakwater"),
	}
	if want.crio {
		wantPaths["/run/crio/crio.sock"] = "/run/crio/crio.sock"
	}
	if want.docker {
		wantPaths["/var/run/docker.sock"] = "/var/run/docker.sock"
		wantPaths["/var/lib/docker"] = "/var/lib/docker"
	}
	for mp, hp := range wantPaths {
		if hostPaths[mp] != hp {
			t.Errorf("daemonset: %s is mounted from %q, want %q", mp, hostPaths[mp], hp)
		}
		delete(hostPaths, mp)
	}
	for mp, hp := range hostPaths {
		if !strings.HasPrefix(hp, "/etc/breakwater") {
			t.Errorf("daemonset: unexpected host path %s at %s", hp, mp)
		}
	}

	// The ServiceMonitor finds the Service and names the job the rules select.
	sm := must(Only[*monitoringv1.ServiceMonitor](objs))(t)
	if !subset(sm.Spec.Selector.MatchLabels, svc.Labels) {
		t.Errorf("servicemonitor: selector %v does not select the service labels %v", sm.Spec.Selector.MatchLabels, svc.Labels)
	}
	if ns := sm.Spec.NamespaceSelector.MatchNames; !slices.Equal(ns, []string{want.namespace}) {
		t.Errorf("servicemonitor: namespaces %v, want [%s]", ns, want.namespace)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" {
		t.Fatalf("servicemonitor: endpoints %+v", sm.Spec.Endpoints)
	}
	job := ""
	for _, r := range sm.Spec.Endpoints[0].RelabelConfigs {
		if r.TargetLabel == "job" && r.Replacement != nil {
			job = *r.Replacement
		}
	}
	if job != want.job {
		t.Errorf("servicemonitor: job %q, want %q (the rules select job=%q)", job, want.job, want.job)
	}

	// The PrometheusRule is the generated one.
	pr := must(Only[*monitoringv1.PrometheusRule](objs))(t)
	if len(pr.Spec.Groups) == 0 {
		t.Fatal("prometheusrule: no groups")
	}
	alerts := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts[r.Alert] = true
			}
		}
	}
	for _, a := range []string{"ContainerMemoryNearLimit", "ContainerCPUSpike", "ContainerRestartingOften", "ContainerEscapeAttempt", "ContainerEscapeSucceeded", "BreakwaterDown"} {
		if !alerts[a] {
			t.Errorf("prometheusrule: no alert %s", a)
		}
	}
}

// checkPrometheusRBAC: the Role lets Prometheus discover targets and
// nothing else, and the RoleBinding grants it to kube-prometheus'
// Prometheus.
func checkPrometheusRBAC(t *testing.T, objs []Object) {
	t.Helper()
	role := must(Only[*rbacv1.Role](objs))(t)
	binding := must(Only[*rbacv1.RoleBinding](objs))(t)
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services", "endpoints", "pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
	}
	if !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("role rules %+v, want %+v", role.Rules, want)
	}
	if binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != role.Name || binding.Namespace != role.Namespace {
		t.Errorf("rolebinding %s/%s binds %+v, want the role %s/%s", binding.Namespace, binding.Name, binding.RoleRef, role.Namespace, role.Name)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != "prometheus-k8s" || binding.Subjects[0].Namespace != "monitoring" {
		t.Errorf("rolebinding subjects %+v, want kube-prometheus' monitoring/prometheus-k8s", binding.Subjects)
	}
}

// Capabilities is the DaemonSet's capability set, sorted; docs/deploy.md
// explains each and the Docker test proves it enough.
var Capabilities = []corev1.Capability{"BPF", "PERFMON", "SYSLOG"}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
