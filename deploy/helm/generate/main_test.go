package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/breakwater/breakwater/internal/testenv"
)

// TestFilesCurrent fails when a generated file of the chart drifts from its
// source (rules/*.go, dashboards/*.json): run `go run ./deploy/helm/generate`.
func TestFilesCurrent(t *testing.T) {
	root := testenv.RepoRoot(t)
	files, err := Files(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("only %d generated files", len(files))
	}
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s drifted: run `go run ./deploy/helm/generate` and commit", path)
		}
	}
	if _, err := os.Stat(filepath.Join(root, chart, "files", "breakwater.rules.yml")); err == nil {
		t.Error("the chart still ships the static rule file")
	}
}
