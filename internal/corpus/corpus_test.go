package corpus

import (
	"os"
	"strings"
	"testing"
)

// TestCasesRunAttempts: every case names a technique attempt.c knows, once.
func TestCasesRunAttempts(t *testing.T) {
	var src strings.Builder
	for _, f := range []string{"attempt.c", "evade.c"} {
		b, err := os.ReadFile("../../collectors/security/testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	seen := map[string]bool{}
	for _, c := range Cases {
		if seen[c.Name] {
			t.Errorf("case %s twice", c.Name)
		}
		seen[c.Name] = true
		if len(c.Args) == 0 || !strings.Contains(src.String(), `!strcmp(t, "`+c.Args[0]+`")`) {
			t.Errorf("case %s: attempt.c has no technique %q", c.Name, c.Args)
		}
		if c.Want == nil {
			t.Errorf("case %s wants nothing: say none", c.Name)
		}
	}
}

// TestLimitsDocumented: docs/kernels.md states every limit the matrix
// accepts, word for word, and every limit names a case that exists.
func TestLimitsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/kernels.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	for _, l := range Limits {
		if !strings.Contains(text, l.Why) {
			t.Errorf("docs/kernels.md does not state the %s limit: %q", l.Kernel, l.Why)
		}
		for _, name := range l.Cases {
			found := false
			for _, c := range Cases {
				found = found || c.Name == name
			}
			if !found {
				t.Errorf("the %s limit names case %s, which does not exist", l.Kernel, name)
			}
		}
	}
}

func TestExpected(t *testing.T) {
	var uring Case
	for _, c := range Cases {
		if c.Name == "uring-open-core" {
			uring = c
		}
	}
	for _, tc := range []struct {
		release, arch string
		limited       bool
	}{
		{"6.1.0-50-cloud-amd64", "amd64", true},
		{"6.1.0-50-cloud-arm64", "arm64", true},
		{"6.12.117+deb13-cloud-amd64", "amd64", false},
		{"5.10.0-32-cloud-arm64", "arm64", true},
		{"6.18.0", "amd64", false},
	} {
		got, l := uring.Expected(tc.release, tc.arch)
		if (l != nil) != tc.limited || (l == nil && len(got) != 1) || (l != nil && len(got) != 0) {
			t.Errorf("%s %s: expected %v under limit %v", tc.release, tc.arch, got, l)
		}
	}
}
