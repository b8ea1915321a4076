package security

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/statefile"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/syscalls"
)

func TestProfilesLearnThenFlagNovelCalls(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1700000000, 0)
	p := newProfiles(statefile.New(dir), time.Minute)
	seen := map[syscalls.ABI][]string{syscalls.Native: {"openat", "read", "write"}}
	p.learn("app:1", seen, 30*time.Second, now)
	if n := p.novel("app:1", map[syscalls.ABI][]string{syscalls.Native: {"ptrace"}}); n != nil {
		t.Errorf("while learning, novel = %v, want nil", n)
	}
	p.learn("app:1", map[syscalls.ABI][]string{syscalls.Native: {"close"}}, 30*time.Second, now.Add(30*time.Second))
	pr, _ := p.get("app:1")
	if pr.Since.IsZero() {
		t.Fatal("an image that ran its learning period is still learning")
	}
	// What it learns after the period is ignored: a learned profile only judges.
	p.learn("app:1", map[syscalls.ABI][]string{syscalls.Native: {"ptrace"}}, time.Hour, now.Add(time.Hour))
	got := p.novel("app:1", map[syscalls.ABI][]string{syscalls.Native: {"read", "ptrace", "close"}, syscalls.Compat: {"read"}})
	slices.Sort(got)
	if !slices.Equal(got, []string{"ptrace", "read"}) {
		t.Errorf("novel = %v, want ptrace and the compat read", got)
	}
	if err := p.save(now, 0); err != nil {
		t.Fatal(err)
	}
	// Across an exporter restart.
	q := newProfiles(statefile.New(dir), time.Minute)
	if q.loadErr != nil {
		t.Fatal(q.loadErr)
	}
	if pr, _ := q.get("app:1"); pr.Since.IsZero() || !slices.Equal(pr.Syscalls["x86_64"], []string{"close", "openat", "read", "write"}) && !slices.Equal(pr.Syscalls["arm64"], []string{"close", "openat", "read", "write"}) {
		t.Errorf("restored profile = %+v", pr)
	}
}

func TestCorruptOrForeignStateIsReportedAndIgnored(t *testing.T) {
	for name, content := range map[string]string{
		"corrupt": "{not json",
		"foreign": `{"version": 99, "profiles": {"x": {"syscalls": {}}}}`,
		"empty":   `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "profiles.json"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			p := newProfiles(statefile.New(dir), time.Minute)
			if p.loadErr == nil {
				t.Error("a bad state file must be reported")
			}
			if len(p.images()) != 0 {
				t.Errorf("profiles restored from a bad state: %v", p.images())
			}
			p.learn("img", map[syscalls.ABI][]string{syscalls.Native: {"read"}}, time.Second, time.Now())
			if err := p.save(time.Now(), 0); err != nil {
				t.Errorf("saving over a bad state: %v", err)
			}
			// The next save did not destroy what the operator must inspect.
			kept := filepath.Join(dir, ProfileFile+statefile.CorruptSuffix)
			if b, err := os.ReadFile(kept); err != nil || string(b) != content {
				t.Errorf("corrupt copy %s = %q, %v; want the bad file", kept, b, err)
			}
			if !strings.Contains(p.loadErr.Error(), kept) {
				t.Errorf("load error %q does not say where the copy is", p.loadErr)
			}
			if got := p.state.State(ProfileFile); got != names.StateFileCorrupt {
				t.Errorf("state = %s, want corrupt", got)
			}
			if got := CheckProfileState(dir); !strings.Contains(got, "readable") || !strings.Contains(got, kept) {
				t.Errorf("check says %q", got)
			}
		})
	}
}

func TestProfilesAreBounded(t *testing.T) {
	p := newProfiles(statefile.New(""), time.Minute)
	for i := 0; i < maxProfiles+10; i++ {
		p.learn(strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), map[syscalls.ABI][]string{syscalls.Native: {"read"}}, time.Second, time.Now())
	}
	if n := len(p.images()); n != maxProfiles || p.dropped != 10 {
		t.Errorf("%d profiles kept, %d dropped; want %d and 10", n, p.dropped, maxProfiles)
	}
}

func TestSeccompProfileShape(t *testing.T) {
	pr := profile{Syscalls: map[string][]string{"x86_64": {"read", "openat"}, "i386": {"socketcall"}}}
	b, err := pr.SeccompProfile("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	var sp seccompProfile
	if err := json.Unmarshal(b, &sp); err != nil {
		t.Fatal(err)
	}
	if sp.DefaultAction != "SCMP_ACT_ERRNO" || !slices.Equal(sp.Architectures, []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}) {
		t.Errorf("profile %s", b)
	}
	names := sp.Syscalls[0].Names
	for _, want := range []string{"read", "openat", "socketcall", "execve"} {
		if !slices.Contains(names, want) {
			t.Errorf("allow-list lacks %s: %v", want, names)
		}
	}
	if slices.Contains(names, "ptrace") {
		t.Error("the allow-list allows a call never seen")
	}
}
