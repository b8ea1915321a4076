package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	return fdinfoIDs(t, pid, "link_id:", "prog_id:")
}

// HeldMaps returns the ids of the BPF maps a process holds descriptors of.
func HeldMaps(t testing.TB, pid int) map[int]bool {
	return fdinfoIDs(t, pid, "map_id:", "map_id:")
}

// fdinfoIDs reads the fdinfo of every descriptor of pid that has a kind
// line (e.g. "link_id:") and returns the numbers of its field lines.
func fdinfoIDs(t testing.TB, pid int, kind, field string) map[int]bool {
	t.Helper()
	infos, err := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	for _, f := range infos {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), kind) {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, field); ok {
				if id, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					ids[id] = true
				}
			}
		}
	}
	return ids
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
