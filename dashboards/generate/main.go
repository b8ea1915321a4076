// Command generate writes breakwater's dashboards and Grafana provisioning
// files; `make dashboards` runs it from the repository root.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/breakwater/breakwater/dashboards"
	"github.com/breakwater/breakwater/rules"
)

func main() {
	root := flag.String("root", ".", "repository root to write into")
	config := flag.String("config", "", "the rule pack's configuration (as for rules/generate -config): the dashboards use its cluster label")
	flag.Parse()
	o := dashboards.DefaultOptions()
	if *config != "" {
		c, err := rules.Load(*config)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dashboards/generate:", err)
			os.Exit(1)
		}
		o.ClusterLabel = c.ClusterLabel
	}
	if err := run(*root, o); err != nil {
		fmt.Fprintln(os.Stderr, "dashboards/generate:", err)
		os.Exit(1)
	}
}

func run(root string, o dashboards.Options) error {
	files, err := dashboards.Files(o)
	if err != nil {
		return err
	}
	for _, p := range dashboards.Paths(files) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", p)
	}
	return nil
}
