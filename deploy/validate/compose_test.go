package validate

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/testenv"
)

const composeDir = "../compose"

// composeFile holds the Compose specification fields the stack uses; strict
// decoding rejects any other, so a misspelt key cannot pass silently.
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]*struct{}      `json:"volumes"`
}

type composeService struct {
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	Image       string            `json:"image"`
	Restart     string            `json:"restart"`
	PID         string            `json:"pid"`
	Cgroup      string            `json:"cgroup"`
	ReadOnly    bool              `json:"read_only"`
	Privileged  bool              `json:"privileged"`
	User        string            `json:"user"`
	CapDrop     []string          `json:"cap_drop"`
	CapAdd      []string          `json:"cap_add"`
	SecurityOpt []string          `json:"security_opt"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Volumes     []string          `json:"volumes"`
	Ports       []string          `json:"ports"`
	DependsOn   []string          `json:"depends_on"`
	Deploy      *struct {
		Resources struct {
			Limits struct {
				CPUs   string `json:"cpus"`
				Memory string `json:"memory"`
			} `json:"limits"`
		} `json:"resources"`
	} `json:"deploy"`
}

// mount is one short-syntax volume: a host path (bind) or a named volume.
type mount struct {
	source, target string
	readOnly, bind bool
}

func (s composeService) mounts(t *testing.T) []mount {
	t.Helper()
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			t.Fatalf("volume %q: want source:target[:ro]", v)
		}
		m := mount{source: parts[0], target: parts[1], readOnly: len(parts) == 3 && parts[2] == "ro"}
		m.bind = strings.HasPrefix(m.source, "/") || strings.HasPrefix(m.source, ".")
		out = append(out, m)
	}
	return out
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	for _, name := range []string{"breakwater", "prometheus", "alertmanager", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	for name, s := range c.Services {
		for _, m := range s.mounts(t) {
			switch {
			case strings.HasPrefix(m.source, "."):
				// Repository files: they must exist, and are never written.
				if _, err := os.Stat(filepath.Join(composeDir, m.source)); err != nil {
					t.Errorf("%s: mounted file %s: %v", name, m.source, err)
				}
				if !m.readOnly {
					t.Errorf("%s: %s is mounted writable", name, m.source)
				}
			case strings.HasPrefix(m.source, "/"):
				if !m.readOnly {
					t.Errorf("%s: host path %s is mounted writable", name, m.source)
				}
			default:
				if _, ok := c.Volumes[m.source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, m.source)
				}
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %s is published beyond loopback", name, p)
			}
		}
	}

	// breakwater runs as the DaemonSet does.
	bw := c.Services["breakwater"]
	if bw.PID != "host" || bw.Cgroup != "host" || !bw.ReadOnly || bw.Privileged || bw.User != "0:0" {
		t.Errorf("breakwater: pid %q cgroup %q read_only %v privileged %v user %q", bw.PID, bw.Cgroup, bw.ReadOnly, bw.Privileged, bw.User)
	}
	if !slices.Equal(bw.CapDrop, []string{"ALL"}) {
		t.Errorf("breakwater: cap_drop %v", bw.CapDrop)
	}
	var want []string
	for _, c := range Capabilities {
		want = append(want, string(c))
	}
	if got := slices.Sorted(slices.Values(bw.CapAdd)); !slices.Equal(got, want) {
		t.Errorf("breakwater: cap_add %v, the DaemonSet's are %v", got, want)
	}
	if !slices.Contains(bw.SecurityOpt, "no-new-privileges:true") {
		t.Error("breakwater: no-new-privileges is the DaemonSet's allowPrivilegeEscalation: false")
	}
	if !slices.Contains(bw.SecurityOpt, "seccomp=unconfined") {
		t.Error("breakwater: seccomp=unconfined is the DaemonSet container's Unconfined profile")
	}
	targets := map[string]string{}
	for _, m := range bw.mounts(t) {
		targets[m.target] = m.source
	}
	for _, p := range []string{"/sys/fs/cgroup", "/sys/kernel/btf", "/var/run/docker.sock", "/var/lib/docker"} {
		if targets[p] != p {
			t.Errorf("breakwater: %s mounted from %q", p, targets[p])
		}
	}
	if bw.Build == nil {
		t.Fatal("breakwater: no build")
	}
	if _, err := os.Stat(filepath.Join(composeDir, bw.Build.Context, bw.Build.Dockerfile)); err != nil {
		t.Errorf("breakwater: Dockerfile: %v", err)
	}
	out, err := exec.Command(exporterBinary(t), append(slices.Clone(bw.Command), "--version")...).CombinedOutput()
	if err != nil {
		t.Errorf("the exporter rejects the compose command %q: %v\n%s", bw.Command, err, out)
	}
}

// TestComposePrometheus checks the Prometheus configuration as the
// container sees it: container paths are mapped back to the repository
// files mounted there, then the pinned promtool checks it, rules included.
func TestComposePrometheus(t *testing.T) {
	c := readCompose(t)
	prom := c.Services["prometheus"]
	cfgPath := flagValue(prom.Command, "--config.file")
	host := map[string]string{} // container path -> absolute repository path
	for _, m := range prom.mounts(t) {
		if strings.HasPrefix(m.source, ".") {
			abs, err := filepath.Abs(filepath.Join(composeDir, m.source))
			if err != nil {
				t.Fatal(err)
			}
			host[m.target] = abs
		}
	}
	src, ok := host[cfgPath]
	if !ok {
		t.Fatalf("prometheus: --config.file %s is not a mounted file", cfgPath)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	if !strings.Contains(cfg, "job_name: breakwater") || !strings.Contains(cfg, "breakwater:9760") || !strings.Contains(cfg, "alertmanager:9093") {
		t.Errorf("prometheus.yml must scrape breakwater:9760 as job breakwater and alert to alertmanager:9093")
	}
	mapped := 0
	for target, abs := range host {
		if target != cfgPath && strings.Contains(cfg, target) {
			cfg = strings.ReplaceAll(cfg, target, abs)
			mapped++
		}
	}
	if mapped == 0 {
		t.Error("prometheus.yml loads no mounted rule file")
	}
	tmp := filepath.Join(t.TempDir(), "prometheus.yml")
	writeFile(t, tmp, cfg)
	out, err := exec.Command(testenv.Tool(t, "promtool"), "check", "config", tmp).CombinedOutput()
	t.Logf("promtool check config:\n%s", out)
	if err != nil {
		t.Errorf("promtool check config: %v", err)
	}
	if !strings.Contains(string(out), "SUCCESS: ") || !strings.Contains(string(out), "rules found") {
		t.Error("promtool did not check the rule file")
	}

	// The images are the versions the test suite runs (.tools).
	tools, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "tools", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// Prometheus 3.x is the Go module version v0.3XX.Y.
	m := regexp.MustCompile(`github.com/prometheus/prometheus v0\.3(\d\d)\.(\d+)`).FindStringSubmatch(string(tools))
	if m == nil {
		t.Fatal("tools/go.mod: no prometheus version")
	}
	minor, _ := strconv.Atoi(m[1])
	if want := "prom/prometheus:v3." + strconv.Itoa(minor) + "." + m[2]; prom.Image != want {
		t.Errorf("prometheus image %s, the tested one is %s", prom.Image, want)
	}
	am, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "tools", "alertmanager", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m = regexp.MustCompile(`github.com/prometheus/alertmanager (v[0-9.]+)`).FindStringSubmatch(string(am))
	if m == nil || c.Services["alertmanager"].Image != "prom/alertmanager:"+m[1] {
		t.Errorf("alertmanager image %s, the tested version %v", c.Services["alertmanager"].Image, m)
	}
}

// TestComposeAlertmanagerAndGrafana checks that the Alertmanager and
// Grafana services get the files their configuration names.
func TestComposeAlertmanagerAndGrafana(t *testing.T) {
	c := readCompose(t)
	am := c.Services["alertmanager"]
	targets := map[string]string{}
	for _, m := range am.mounts(t) {
		targets[m.target] = m.source
	}
	cfg := flagValue(am.Command, "--config.file")
	if targets[cfg] == "" {
		t.Fatalf("alertmanager: --config.file %s is not mounted", cfg)
	}
	b, err := os.ReadFile(filepath.Join(composeDir, targets[cfg]))
	if err != nil {
		t.Fatal(err)
	}
	var amCfg struct {
		Templates []string `json:"templates"`
	}
	if err := yamlUnmarshal(b, &amCfg); err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range amCfg.Templates {
		p := tmpl
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(cfg), p)
		}
		if targets[p] == "" {
			t.Errorf("alertmanager: template %s (%s) is not mounted", tmpl, p)
		}
	}

	g := c.Services["grafana"]
	targets = map[string]string{}
	for _, m := range g.mounts(t) {
		targets[m.target] = m.source
	}
	ds := filepath.Join(composeDir, targets["/etc/grafana/provisioning/datasources"], "prometheus.yaml")
	b, err = os.ReadFile(ds)
	if err != nil {
		t.Fatalf("grafana data source: %v", err)
	}
	if !strings.Contains(string(b), "url: http://prometheus:9090") {
		t.Error("grafana data source does not point at the prometheus service")
	}
	prov := filepath.Join(composeDir, targets["/etc/grafana/provisioning/dashboards"], "breakwater.yaml")
	b, err = os.ReadFile(prov)
	if err != nil {
		t.Fatalf("grafana dashboard provider: %v", err)
	}
	var p struct {
		Providers []struct {
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := yamlUnmarshal(b, &p); err != nil || len(p.Providers) != 1 {
		t.Fatalf("grafana dashboard provider: %v", err)
	}
	dir := targets[p.Providers[0].Options.Path]
	if dir == "" {
		t.Fatalf("grafana: dashboards path %s is not mounted", p.Providers[0].Options.Path)
	}
	jsons, _ := filepath.Glob(filepath.Join(composeDir, dir, "*.json"))
	if len(jsons) == 0 {
		t.Errorf("grafana: no dashboards in %s", dir)
	}
}

func TestComposeStrict(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, from := range map[string][2]string{
		"unknown key": {"read_only: true", "readonly: true"},
		"case":        {"cap_add:", "Cap_add:"},
		"duplicate":   {"pid: host", "pid: host\n    pid: host"},
	} {
		doc := strings.Replace(string(b), from[0], from[1], 1)
		var c composeFile
		if doc == string(b) || UnmarshalStrict([]byte(doc), &c) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
