package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
)

// TestHelp: a subcommand's --help leads with its own flags, the server's
// follow as global flags; the top-level help is kingpin's.
func TestHelp(t *testing.T) {
	bin := build(t)
	out, _ := exec.Command(bin, "profile", "--help").CombinedOutput()
	help := string(out)
	own, global, server := strings.Index(help, "--image=IMAGE"), strings.Index(help, "Global flags:"), strings.Index(help, "--web.listen-address")
	if own < 0 || global < 0 || server < 0 || !(own < global && global < server) {
		t.Errorf("profile --help does not list --image, then the global flags (%d, %d, %d):\n%s", own, global, server, help)
	}
	out, _ = exec.Command(bin, "--help").CombinedOutput()
	if !strings.Contains(string(out), "Flags:") || !strings.Contains(string(out), "--web.listen-address") || strings.Contains(string(out), "Global flags:") {
		t.Errorf("breakwater --help:\n%s", out)
	}
}

// stackError prints a stack under %+v, as pkg/errors' errors do.
type stackError struct{}

func (stackError) Error() string { return "unable to parse docker host `/var/run/docker.sock`" }
func (e stackError) Format(s fmt.State, verb rune) {
	fmt.Fprint(s, e.Error())
	if s.Flag('+') {
		fmt.Fprint(s, "\ngithub.com/docker/docker/client.ParseHostURL\n\t/go/client.go:415")
	}
}

// TestNoStackTraces: an error is logged as its message, on one line, in
// both log formats and through WithAttrs.
func TestNoStackTraces(t *testing.T) {
	// Without the wrapper the logfmt handler prints the stack (%+v): what
	// the test guards against.
	var raw bytes.Buffer
	slog.New(slog.NewTextHandler(&raw, nil)).Warn("x", "err", stackError{})
	if !strings.Contains(raw.String(), "client.go") {
		t.Fatalf("the text handler no longer prints %%+v, the test shows nothing: %s", raw.String())
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		l := slog.New(plainErrors{h(&buf)})
		l.Warn("Docker client unusable", "err", stackError{})
		l.With("err", stackError{}).Error("again")
		if out := buf.String(); strings.Contains(out, "client.go") || strings.Count(out, "\n") != 2 || !strings.Contains(out, "unable to parse docker host") {
			t.Errorf("log lines:\n%s", out)
		}
	}
}
