// Command generate writes breakwater's rule file and PrometheusRule from the
// Go source in package rules. Without flags it regenerates the committed
// files (run it from the repository root, as `make rules` does); -config
// overrides the defaults from a YAML/JSON file and -out writes both files
// into one directory instead, which is how tests and e2e shorten windows.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/breakwater/breakwater/rules"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "YAML or JSON file overriding the default rules.Config")
	out := fs.String("out", "", "write breakwater.rules.yml and prometheusrule.yaml into this directory instead of the repository paths")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := rules.Default()
	if *config != "" {
		var err error
		if cfg, err = rules.Load(*config); err != nil {
			return err
		}
	}
	ruleFile, promRule := rules.RuleFilePath, rules.PrometheusRulePath
	if *out != "" {
		ruleFile = filepath.Join(*out, filepath.Base(rules.RuleFilePath))
		promRule = filepath.Join(*out, filepath.Base(rules.PrometheusRulePath))
	} else if _, err := os.Stat("rules"); err != nil {
		return fmt.Errorf("run from the repository root or pass -out: %w", err)
	}
	return rules.Write(cfg, ruleFile, promRule)
}
