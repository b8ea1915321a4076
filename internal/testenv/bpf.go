package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FreeAddr returns a loopback address with a port free at the time of the call.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// LinkedPrograms returns the ids of the BPF programs a process holds links
// to, read from the fdinfo of its descriptors.
func LinkedPrograms(t testing.TB, pid int) map[int]bool {
	t.Helper()
	infos, err := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	progs := map[int]bool{}
	for _, f := range infos {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), "link_id:") {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			var id int
			if _, err := fmt.Sscanf(line, "prog_id:\t%d", &id); err == nil {
				progs[id] = true
			}
		}
	}
	return progs
}

// StillLoaded returns which of the programs the kernel still holds.
func StillLoaded(t testing.TB, progs map[int]bool) []int {
	t.Helper()
	out, err := exec.Command("bpftool", "-j", "prog", "show").Output()
	if err != nil {
		t.Fatalf("bpftool prog show: %v", err)
	}
	var loaded []struct {
		ID int `json:"id"`
	}
	if err := json.Unmarshal(out, &loaded); err != nil {
		t.Fatal(err)
	}
	var left []int
	for _, p := range loaded {
		if progs[p.ID] {
			left = append(left, p.ID)
		}
	}
	return left
}
