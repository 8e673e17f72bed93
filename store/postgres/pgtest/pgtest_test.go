package pgtest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBinDir finds the newest installed version, and without one fails
// with the message that says how to get it.
func TestBinDir(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"13", "15", "9"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"postgres", "initdb"} {
			if err := os.WriteFile(filepath.Join(bin, f), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	saved := installRoot
	t.Cleanup(func() { installRoot = saved })
	installRoot = root
	if d, err := binDir(); err != nil || d != filepath.Join(root, "15", "bin") {
		t.Fatalf("binDir = %q, %v; want version 15", d, err)
	}
	installRoot = filepath.Join(root, "none")
	t.Setenv("PATH", t.TempDir())
	if _, err := binDir(); err == nil || err.Error() != Missing {
		t.Fatalf("without PostgreSQL: %v, want %q", err, Missing)
	}
}
