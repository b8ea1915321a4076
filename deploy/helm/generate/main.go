// Command generate copies the generated alert pack and the dashboards into
// the Helm chart, which can only ship files under its own directory. Run it
// from the repository root after `make rules` and `make dashboards`:
//
//	go run ./deploy/helm/generate
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

const chart = "deploy/helm/breakwater/files"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run() error {
	copies := map[string]string{"rules/breakwater.rules.yml": filepath.Join(chart, "breakwater.rules.yml")}
	dashboards, err := filepath.Glob("dashboards/*.json")
	if err != nil {
		return err
	}
	if len(dashboards) == 0 {
		return fmt.Errorf("no dashboards/*.json: run from the repository root")
	}
	for _, d := range dashboards {
		copies[d] = filepath.Join(chart, "dashboards", filepath.Base(d))
	}
	// Stale copies of removed dashboards go too.
	old, _ := filepath.Glob(filepath.Join(chart, "dashboards", "*.json"))
	for _, o := range old {
		if _, err := os.Stat(filepath.Join("dashboards", filepath.Base(o))); os.IsNotExist(err) {
			if err := os.Remove(o); err != nil {
				return err
			}
		}
	}
	for src, dst := range copies {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", dst)
	}
	return nil
}
