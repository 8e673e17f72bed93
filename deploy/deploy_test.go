// Package deploy holds no code: its test checks the deployment files in
// this folder with the tools that read them (systemd-analyze, promtool,
// podman or buildah) where the machine has them, and otherwise parses
// them and checks what they refer to.
package deploy

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the repository, one level up.
const repoRoot = ".."

// The unit verifies with systemd-analyze: no unknown keys, no bad values,
// and its ExecStart is executable once firmad is built there (the test
// builds it and points ExecStart at the build). make test's set-up
// installs systemd for systemd-analyze. Cost: one go build of firmad
// (cached) and about a second.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("firmad.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=firma", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=firma",
		"ExecReload=/bin/kill -HUP $MAINPID", "CapabilityBoundingSet=\n", "ExecStart=/usr/local/bin/firmad -config /var/lib/firma/firmad.yaml"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("firmad.service lacks %q", want)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install -y systemd; make deps-test does it): the unit is not verified")
	}
	dir := t.TempDir()
	firmad := filepath.Join(dir, "firmad")
	if out, err := exec.Command("go", "build", "-o", firmad, "github.com/firma-cloud/firma/cmd/firmad").CombinedOutput(); err != nil {
		t.Fatalf("build firmad: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "firmad.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/firmad"), []byte(firmad)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", "--man=no", path)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err = cmd.Run()
	// Unknown keys and bad values are only warnings (exit 0): any line
	// about the unit file fails the test too.
	if err != nil || strings.Contains(stderr.String(), "firmad.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var metricRe = regexp.MustCompile(`\bfirma_[a-z0-9_]+`)

// exportedMetrics collects the metric names the code registers: the
// quoted "firma_..." strings of the non-test Go files.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	quoted := regexp.MustCompile(`"(firma_[a-z0-9_]+)"`)
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "var") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range quoted.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// The alerts are valid rules (promtool check rules when installed; make
// test's set-up installs it), each has a severity and a summary, and
// every firma_ metric they use is one firmad exports, so a renamed metric
// fails here rather than silence an alert.
func TestAlerts(t *testing.T) {
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	exported := exportedMetrics(t)
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: want alert, expr, labels.severity and annotations.summary", r.Alert)
			}
			for _, m := range metricRe.FindAllString(r.Expr, -1) {
				base := m
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if s, ok := strings.CutSuffix(m, suf); ok && exported[s] {
						base = s
					}
				}
				if !exported[base] {
					t.Errorf("rule %s uses %s, which firmad does not export", r.Alert, m)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("%d rules; want the alerts of docs/operations.md", n)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install -y --no-install-recommends prometheus; make deps-test does it): rules parsed, not checked by Prometheus")
	}
	if out, err := exec.Command(promtool, "check", "rules", "alerts.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// containerfile is the parsed Containerfile: its instructions with
// continuation lines joined.
func containerfile(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s + " "
			continue
		}
		cur += line
		word, rest, _ := strings.Cut(cur, " ")
		out = append(out, [2]string{strings.ToUpper(word), strings.TrimSpace(rest)})
		cur = ""
	}
	return out
}

// The Containerfile refers only to files and packages that exist, runs
// firmad as a user of its own, and builds with podman or buildah when the
// machine has one and its base images (this sandbox reaches no container
// registry, so there the build is skipped and says so; docs/operations.md
// says the same).
func TestContainerfile(t *testing.T) {
	known := map[string]bool{"FROM": true, "WORKDIR": true, "COPY": true, "RUN": true, "USER": true, "VOLUME": true,
		"EXPOSE": true, "STOPSIGNAL": true, "ENTRYPOINT": true, "CMD": true, "ENV": true, "ARG": true, "LABEL": true}
	var froms []string
	user := ""
	for _, ins := range containerfile(t) {
		op, arg := ins[0], ins[1]
		if !known[op] {
			t.Errorf("unknown instruction %s", op)
		}
		switch op {
		case "FROM":
			froms = append(froms, strings.Fields(arg)[0])
		case "USER":
			user = arg
		case "COPY":
			if strings.HasPrefix(arg, "--from=") {
				continue
			}
			srcs := strings.Fields(arg)
			for _, s := range srcs[:len(srcs)-1] {
				if _, err := os.Stat(filepath.Join(repoRoot, s)); err != nil {
					t.Errorf("COPY %s: %v", s, err)
				}
			}
		case "RUN":
			for _, m := range regexp.MustCompile(`go build [^&]*?(\./cmd/[a-z]+)`).FindAllStringSubmatch(arg, -1) {
				if _, err := os.Stat(filepath.Join(repoRoot, m[1], "main.go")); err != nil {
					t.Errorf("RUN builds %s: %v", m[1], err)
				}
			}
		}
	}
	if len(froms) != 2 || user == "" || user == "root" || user == "0" {
		t.Errorf("want a build stage and a runtime stage, and a USER that is not root: FROM %v, USER %q", froms, user)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, ".containerignore")); err != nil {
		t.Errorf("no .containerignore: COPY . would send var/ (keys, PINs) to the build: %v", err)
	}

	var builder string
	for _, b := range []string{"podman", "buildah"} {
		if p, err := exec.LookPath(b); err == nil {
			builder = p
			break
		}
	}
	if builder == "" {
		t.Skip("neither podman nor buildah installed: the image is not built (docs/operations.md, \"Container\")")
	}
	for _, img := range froms {
		if err := exec.Command(builder, "image", "exists", img).Run(); err != nil {
			if err := exec.Command(builder, "pull", "-q", img).Run(); err != nil {
				t.Skipf("base image %s neither present nor pullable (no registry access): the image is not built", img)
			}
		}
	}
	out, err := exec.Command(builder, "build", "-f", "deploy/Containerfile", "-t", "firma-test:latest", repoRoot).CombinedOutput()
	if err != nil {
		t.Fatalf("%s build: %v\n%s", builder, err, out)
	}
	if out, err := exec.Command(builder, "run", "--rm", "firma-test:latest", "-h").CombinedOutput(); !bytes.Contains(out, []byte("-config")) {
		t.Fatalf("firmad -h in the image: %v\n%s", err, out)
	}
}
