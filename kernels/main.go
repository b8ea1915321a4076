// Command kernels is `make test-kernels`: it boots Debian's cloud kernels
// (5.10, 6.1 and 6.12, amd64 and arm64) under QEMU TCG with one vCPU, each
// with an initramfs of busybox, a static breakwater and the static attempt
// binaries, and runs inside `breakwater check`, breakwater as the exporter
// runs it (in a container-like cgroup of its own), and every case of
// internal/corpus in a container-like cgroup. It prints a table of kernel ×
// arch × case and fails on any result that is neither the case's Want nor a
// documented limit of that kernel.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/breakwater/breakwater/internal/corpus"

	_ "embed"
)

//go:embed init.sh
var initScript []byte

// vm is one kernel of the matrix.
type vm struct {
	suite, arch string
}

func (v vm) String() string { return v.suite + "-" + v.arch }

var matrix = []vm{
	{"bullseye", "amd64"}, {"bookworm", "amd64"}, {"trixie", "amd64"},
	{"bullseye", "arm64"}, {"bookworm", "arm64"}, {"trixie", "arm64"},
}

// abis are the attempt binaries each architecture runs, and their paths.
var abis = map[string][][2]string{
	"amd64": {{"amd64", "/attempt"}, {"386", "/attempt32"}},
	"arm64": {{"arm64", "/attempt"}},
}

func main() {
	cache := flag.String("cache", ".tools/kernels", "where downloads, builds and VM logs are kept")
	only := flag.String("only", "", "comma-separated VMs to run (e.g. trixie-amd64); empty runs all")
	timeout := flag.Duration("timeout", 15*time.Minute, "how long one VM may run")
	parallel := flag.Int("parallel", 1, "how many VMs run at once (each takes one core)")
	flag.Parse()
	if err := run(*cache, *only, *timeout, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "test-kernels:", err)
		os.Exit(1)
	}
}

func run(cache, only string, timeout time.Duration, parallel int) error {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	cache, _ = filepath.Abs(cache)
	start := time.Now()
	if err := sh("bash", "kernels/fetch.sh", cache); err != nil {
		return err
	}
	var vms []vm
	for _, v := range matrix {
		if only == "" || contains(strings.Split(only, ","), v.String()) {
			vms = append(vms, v)
		}
	}
	if len(vms) == 0 {
		return fmt.Errorf("no VM matches %q", only)
	}
	build := filepath.Join(cache, "build")
	if err := os.MkdirAll(build, 0o755); err != nil {
		return err
	}
	arches := map[string]bool{}
	for _, v := range vms {
		arches[v.arch] = true
	}
	for arch := range arches {
		if err := buildFor(build, arch); err != nil {
			return err
		}
	}
	fmt.Printf("fetch and build: %s\n", time.Since(start).Round(time.Second))

	// VMs run -parallel at a time, one vCPU each; their results print in
	// matrix order.
	results := make([]*result, len(vms))
	errs := make([]error, len(vms))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, v := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = boot(cache, build, v, timeout)
		}()
	}
	wg.Wait()
	failed := false
	for i, r := range results {
		if errs[i] != nil {
			fmt.Printf("%s: %v\n", vms[i], errs[i])
			failed = true
		}
		if r == nil {
			return errs[i]
		}
		fmt.Printf("%s: %s, wall %s (%s)\n", r.vm, r.release, r.wall.Round(time.Second), r.stamps)
	}
	fmt.Println()
	for _, r := range results {
		fmt.Printf("--- breakwater check on %s (%s), exit %d\n%s", r.vm, r.release, r.checkRC, r.check)
	}
	fmt.Println()
	if !table(os.Stdout, results) {
		failed = true
	}
	fmt.Printf("\ntotal wall time: %s\n", time.Since(start).Round(time.Second))
	if failed {
		return errors.New("results that are neither wanted nor a documented limit (marked !); VM logs in " + filepath.Join(cache, "logs"))
	}
	return nil
}

// buildFor builds the static breakwater and attempt binaries for arch.
func buildFor(build, arch string) error {
	bw := filepath.Join(build, "breakwater-"+arch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bw, "./cmd/breakwater")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build breakwater for %s: %w", arch, err)
	}
	src := "collectors/security/testdata/attempt.c"
	switch arch {
	case "amd64":
		if err := sh("gcc", "-static", "-O2", "-o", filepath.Join(build, "attempt-amd64"), src); err != nil {
			return err
		}
		// gcc-12-multilib has no i386 multiarch include directory: the
		// amd64 one holds the same biarch kernel headers.
		return sh("gcc", "-m32", "-static", "-O2", "-I/usr/include/x86_64-linux-gnu", "-o", filepath.Join(build, "attempt-386"), src)
	case "arm64":
		return sh("aarch64-linux-gnu-gcc", "-static", "-O2", "-o", filepath.Join(build, "attempt-arm64"), src)
	}
	return fmt.Errorf("no build for %s", arch)
}

// caseID is the container id of a case's cgroup.
func caseID(s string) string {
	h := sha256.Sum256([]byte("breakwater test-kernels " + s))
	return hex.EncodeToString(h[:])
}

const selfName = "breakwater itself"

// lookalikeID is the sub-cgroup the lookalike-sub case makes: never a container.
const lookalikeID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// run is one case run as one ABI.
type caseRun struct {
	c   corpus.Case
	abi string
	id  string
}

func (r caseRun) key() string {
	if r.abi == "386" {
		return r.c.Name + " (i386)"
	}
	return r.c.Name
}

func runsOf(arch string) []caseRun {
	var runs []caseRun
	for _, ab := range abis[arch] {
		for _, c := range corpus.Cases {
			if c.Runs(ab[0]) {
				runs = append(runs, caseRun{c: c, abi: ab[0], id: caseID(ab[0] + " " + c.Name)})
			}
		}
	}
	return runs
}

// initramfs writes the VM's initramfs.
func initramfs(path, cache, build string, v vm) error {
	w := newCPIO()
	w.dir("bin")
	for _, d := range []string{"proc", "sys", "dev", "tmp", "etc"} {
		w.dir(d)
	}
	busybox, err := os.ReadFile(filepath.Join(cache, "bookworm-"+v.arch, "root/bin/busybox"))
	if err != nil {
		return err
	}
	w.file("bin/busybox", 0o755, busybox)
	w.file("init", 0o755, initScript)
	bw, err := os.ReadFile(filepath.Join(build, "breakwater-"+v.arch))
	if err != nil {
		return err
	}
	w.file("breakwater", 0o755, bw)
	for _, ab := range abis[v.arch] {
		b, err := os.ReadFile(filepath.Join(build, "attempt-"+ab[0]))
		if err != nil {
			return err
		}
		w.file(strings.TrimPrefix(ab[1], "/"), 0o755, b)
	}
	var cases bytes.Buffer
	for _, r := range runsOf(v.arch) {
		bin := ""
		for _, ab := range abis[v.arch] {
			if ab[0] == r.abi {
				bin = ab[1]
			}
		}
		if r.c.As != "" && r.abi == v.arch {
			bin = r.c.As
			w.symlink(strings.TrimPrefix(r.c.As, "/"), "/attempt")
		}
		fmt.Fprintf(&cases, "%s %s %s %s\n", r.id, bin, strings.ReplaceAll(r.key(), " ", "_"), strings.Join(r.c.Args, " "))
	}
	w.file("cases", 0o644, cases.Bytes())
	w.file("self-id", 0o644, []byte(caseID(selfName)))
	w.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if _, err := gz.Write(w.bytes()); err != nil {
		return err
	}
	return gz.Close()
}

// result is what one VM reported.
type result struct {
	vm         vm
	release    string
	wall       time.Duration
	stamps     string
	check      string
	checkRC    int
	exporterUp bool
	selfCgroup string                        // breakwater's own, from /proc/<pid>/cgroup
	escapes    map[string]map[string]float64 // container_id -> technique/result -> count
	attached   int
	output     map[string]string // case key -> what the attempt printed
	done       bool
	runs       []caseRun
}

func boot(cache, build string, v vm, timeout time.Duration) (*result, error) {
	dir := filepath.Join(cache, v.suite+"-"+v.arch)
	rel, err := os.ReadFile(filepath.Join(dir, "done"))
	if err != nil {
		return nil, err
	}
	release := strings.TrimSpace(string(rel))
	initrd := filepath.Join(build, "initramfs-"+v.String()+".gz")
	if err := initramfs(initrd, cache, build, v); err != nil {
		return nil, err
	}
	kernel := filepath.Join(dir, "root/boot/vmlinuz-"+release)
	args := []string{"-n", "10"}
	switch v.arch {
	case "amd64":
		args = append(args, "qemu-system-x86_64", "-cpu", "max", "-append", "console=ttyS0 rdinit=/init panic=-1 quiet")
	case "arm64":
		args = append(args, "qemu-system-aarch64", "-M", "virt", "-cpu", "max", "-append", "console=ttyAMA0 rdinit=/init panic=-1 quiet")
	}
	// One vCPU: with two, a TCG guest soft-locked in syscall_trace_enter
	// while the programs attached.
	args = append(args, "-accel", "tcg", "-smp", "1", "-m", "1024", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd)
	logs := filepath.Join(cache, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logs, v.String()+".log")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nice", args...)
	var out bytes.Buffer
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout = io.MultiWriter(&out, logFile)
	cmd.Stderr = cmd.Stdout
	cmd.Stdin = nil
	start := time.Now()
	fmt.Printf("%s: booting %s\n", v, release)
	runErr := cmd.Run()
	r := parse(out.String())
	r.vm, r.release, r.wall, r.runs = v, release, time.Since(start), runsOf(v.arch)
	if !r.done {
		return r, fmt.Errorf("the VM did not finish (%v); its console is in %s", runErr, logPath)
	}
	return r, nil
}

// parse reads the sections init.sh frames with "=== " lines.
func parse(console string) *result {
	r := &result{checkRC: -1, output: map[string]string{}, escapes: map[string]map[string]float64{}}
	var section, name string
	var metrics, check, caseOut strings.Builder
	var stamps []string
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(console, "\r", "")))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "=== "); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "boot", "exporter-up", "cases-done", "done":
				if len(f) > 1 {
					stamps = append(stamps, f[0]+" "+f[1]+"s")
				}
				r.done = r.done || f[0] == "done"
				r.exporterUp = r.exporterUp || f[0] == "exporter-up"
			case "self-cgroup":
				r.selfCgroup = strings.Join(f[1:], " ")
			case "exporter-failed", "tracked":
				stamps = append(stamps, rest)
			case "check-rc":
				fmt.Sscan(f[1], &r.checkRC)
				if len(f) > 2 {
					stamps = append(stamps, "check "+f[2]+"s")
				}
			case "case":
				name = strings.ReplaceAll(f[1], "_", " ")
				caseOut.Reset()
			case "case-rc":
				r.output[name] = strings.TrimSpace(caseOut.String())
				name = ""
			}
			section = f[0]
			continue
		}
		switch section {
		case "check":
			check.WriteString(line + "\n")
		case "case":
			caseOut.WriteString(line + "\n")
		case "metrics":
			metrics.WriteString(line + "\n")
		}
	}
	r.check = check.String()
	r.stamps = strings.Join(stamps, ", ")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(metrics.String()))
	if err != nil {
		r.check += fmt.Sprintf("(metrics did not parse: %v)\n", err)
	}
	if mf := families["breakwater_escape_attempts_total"]; mf != nil {
		for _, m := range mf.GetMetric() {
			l := labels(m)
			id := l["container_id"]
			if r.escapes[id] == nil {
				r.escapes[id] = map[string]float64{}
			}
			r.escapes[id][l["technique"]+"/"+l["result"]] += m.GetCounter().GetValue()
		}
	}
	if mf := families["breakwater_bpf_program_attached"]; mf != nil {
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				r.attached++
			}
		}
	}
	return r
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// table prints kernel × arch × case and reports whether every result was
// wanted or a documented limit.
func table(w io.Writer, results []*result) bool {
	ok := true
	var keys []string
	want := map[string]string{}
	byKey := map[string]caseRun{}
	for _, r := range results {
		for _, run := range r.runs {
			if _, seen := byKey[run.key()]; !seen {
				keys = append(keys, run.key())
				byKey[run.key()] = run
				want[run.key()] = format(run.c.Want)
			}
		}
	}
	fmt.Fprintf(w, "%-32s %-44s", "case", "wanted")
	for _, r := range results {
		fmt.Fprintf(w, " %-14s", corpus.Kernel(r.release)+"/"+r.vm.arch)
	}
	fmt.Fprintln(w)
	cell := func(got, expected map[string]float64, limit *corpus.Limit) string {
		switch {
		case equal(got, expected) && limit != nil:
			return "limit"
		case equal(got, expected):
			return "ok"
		}
		ok = false
		return "!" + format(got)
	}
	for _, k := range keys {
		fmt.Fprintf(w, "%-32s %-44s", k, want[k])
		for _, r := range results {
			c := "-"
			for _, run := range r.runs {
				if run.key() == k {
					expected, limit := run.c.Expected(r.release, r.vm.arch)
					c = cell(r.escapes[run.id], expected, limit)
				}
			}
			fmt.Fprintf(w, " %-14s", c)
		}
		fmt.Fprintln(w)
	}
	// breakwater never counts itself, and a sub-cgroup named like a
	// container never becomes one.
	for _, extra := range []struct{ name, id string }{{"self-exclusion", caseID(selfName)}, {"lookalike-is-no-container", lookalikeID}} {
		fmt.Fprintf(w, "%-32s %-44s", extra.name, "none")
		for _, r := range results {
			c := cell(r.escapes[extra.id], map[string]float64{}, nil)
			if extra.id == caseID(selfName) && !strings.Contains(r.selfCgroup, "docker-"+extra.id+".scope") {
				ok = false
				c = "!not in its cgroup"
			}
			fmt.Fprintf(w, " %-14s", c)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%-32s %-44s", "exporter up", "yes")
	for _, r := range results {
		c := "ok"
		if !r.exporterUp {
			ok, c = false, "!no"
		}
		fmt.Fprintf(w, " %-14s", c)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-32s %-44s", "check exit", "0")
	for _, r := range results {
		limit := corpus.LimitOf(r.release, r.vm.arch, "")
		fails := limit != nil && limit.CheckFails
		switch {
		case fails && r.checkRC != 0:
			fmt.Fprintf(w, " %-14s", "limit")
		case !fails && r.checkRC == 0:
			fmt.Fprintf(w, " %-14s", "ok")
		default:
			ok = false
			fmt.Fprintf(w, " %-14s", fmt.Sprintf("!%d", r.checkRC))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-32s %-44s", "programs attached", "")
	for _, r := range results {
		fmt.Fprintf(w, " %-14d", r.attached)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\nlimits (docs/kernels.md):")
	for _, l := range corpus.Limits {
		fmt.Fprintf(w, "  %s: %s\n", l.Kernel, l.Why)
	}
	if !ok {
		fmt.Fprintln(w, "\nwhat the attempts printed where the results differ:")
		for _, r := range results {
			for _, run := range r.runs {
				expected, _ := run.c.Expected(r.release, r.vm.arch)
				if !equal(r.escapes[run.id], expected) {
					fmt.Fprintf(w, "  %s %s: %q\n", r.vm, run.key(), r.output[run.key()])
				}
			}
		}
	}
	return ok
}

func format(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		if v == 1 {
			parts = append(parts, k)
		} else {
			parts = append(parts, fmt.Sprintf("%s×%g", k, v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func equal(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sh(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
