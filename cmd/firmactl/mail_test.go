package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad arguments to `mail outbox` and `mail test` are refused before any
// connection.
func TestMailOutboxUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"mail", "outbox", "--limit", "0"}, "--limit 0"},
		{[]string{"mail", "outbox", "--limit", "5000"}, "--limit 5000"},
		{[]string{"mail", "outbox", "extra"}, `unexpected argument "extra"`},
		{[]string{"mail", "test"}, "--to is required"},
		{[]string{"mail", "test", "--to", "Ops <ops@example.es>"}, "--to: want a bare address"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, func(string) string { return "" }, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tt.want)
			}
		})
	}
}
