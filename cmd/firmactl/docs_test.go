package main

import (
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// firmactlCall finds "firmactl WORDS --flags" in text: the command line up
// to the end of the line, a backtick or a shell comment.
var firmactlCall = regexp.MustCompile("firmactl ([a-z][a-z-]*(?: [a-z][a-z-]*)?)([^`\n#|;]*)")

// Every firmactl command docs/operations.md and the README's audit
// how-to name is one firmactl has, with flags it has: the page is checked
// against the code, not against memory.
func TestDocumentedCommandsExist(t *testing.T) {
	ops, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	audit, _, _ := strings.Cut(string(readme), "\n## Benchmarks")
	_, audit, _ = strings.Cut(audit, "\n## Audit")
	checked := 0
	for _, doc := range []struct{ name, text string }{{"docs/operations.md", codeOf(string(ops))}, {"README ## Audit", codeOf(audit)}} {
		for _, ix := range firmactlCall.FindAllStringSubmatchIndex(doc.text, -1) {
			m := []string{doc.text[ix[0]:ix[1]], doc.text[ix[2]:ix[3]], doc.text[ix[4]:ix[5]]}
			if ix[3] < len(doc.text) && doc.text[ix[3]] == ':' {
				continue // an image name (--entrypoint firmactl firma:latest)
			}
			words := strings.Fields(m[1])
			c, _ := lookup(words)
			if c == nil {
				t.Errorf("%s: firmactl %s: no such command", doc.name, m[1])
				continue
			}
			fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			if c.flags != nil {
				c.flags(fs)
			}
			if c.remote {
				var cf connFlags
				cf.register(fs, func(string) string { return "" })
			}
			for _, f := range regexp.MustCompile(`(?:^|\s)--?([a-z][a-z0-9-]*)`).FindAllStringSubmatch(m[2], -1) {
				if fs.Lookup(f[1]) == nil {
					t.Errorf("%s: firmactl %s: no flag --%s", doc.name, c.name, f[1])
				}
			}
			checked++
		}
	}
	t.Logf("%d firmactl command lines checked", checked)
	if checked < 20 {
		t.Errorf("only %d firmactl commands found in the docs: is the pattern still right?", checked)
	}
}

// codeOf keeps the code of a Markdown text, fenced blocks and inline
// spans, one per line: prose that mentions firmactl is not a command.
func codeOf(md string) string {
	var b strings.Builder
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			b.WriteString(line + "\n")
			continue
		}
		parts := strings.Split(line, "`")
		for i := 1; i < len(parts); i += 2 {
			b.WriteString(parts[i] + "\n")
		}
	}
	return b.String()
}
