package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantOut string
	}{
		{[]string{"ID", "--out", "f.pem"}, []string{"ID"}, "f.pem"},
		{[]string{"--out", "f.pem", "ID"}, []string{"ID"}, "f.pem"},
		{[]string{"A", "B"}, []string{"A", "B"}, ""},
		{[]string{"--", "--out"}, []string{"--out"}, ""},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			out := fs.String("out", "", "")
			pos, err := parseInterspersed(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tt.wantPos) || *out != tt.wantOut {
				t.Errorf("pos %q out %q", pos, *out)
			}
		})
	}
}

func TestHasTokenLabel(t *testing.T) {
	slots := `Available slots:
Slot 1234
    Slot info:
        Description:      SoftHSM slot ID 0x4d2
    Token info:
        Label:            firma-prod
        Initialized:      yes
Slot 1
    Token info:
        Label:
        Initialized:      no
`
	for label, want := range map[string]bool{"firma-prod": true, "firma": false, "": true, "prod": false} {
		if got := hasTokenLabel(slots, label); got != want {
			t.Errorf("hasTokenLabel(%q) = %v", label, got)
		}
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s")
	s1, created, err := secretFile(p, "", randomPIN)
	if err != nil || !created || len(s1) != 32 {
		t.Fatalf("first: %q %v %v", s1, created, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	s2, created, err := secretFile(p, "", randomPIN)
	if err != nil || created || s2 != s1 {
		t.Fatalf("second call did not reuse the file: %q %v %v", s2, created, err)
	}
	os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600)
	if _, _, err := secretFile(filepath.Join(dir, "empty"), "", randomPIN); err == nil {
		t.Error("empty secret file accepted")
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"keys", "generate"}, 2, "--user is required"},
		{[]string{"keys", "generate", "--user", "X", "--type", "dsa"}, 2, "--type"},
		{[]string{"sign", "--key", "k", "--out", "o"}, 2, "exactly one of --digest and --in"},
		{[]string{"sign", "--key", "k", "--out", "o", "--digest", "zz"}, 2, "not hex"},
		{[]string{"sign", "--key", "k", "--out", "o", "--digest", "abcd"}, 2, "has 2 bytes"},
		{[]string{"sign", "--key", "k", "--out", "o", "--digest", "abcd", "--hash", "md5"}, 2, "--hash"},
		{[]string{"keys", "pubkey"}, 2, "exactly one key ID"},
		{[]string{"keys", "list", "--addr", "10.1.2.3:7700", "--token-file", "/dev/null"}, 1, "not loopback"},
		{[]string{"keys", "list", "--state", "/nonexistent-firma"}, 1, "firmactl init"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, func(string) string { return "" }, &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.want)
			}
		})
	}
}
