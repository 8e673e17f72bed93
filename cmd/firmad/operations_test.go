package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firma-cloud/firma/internal/firmadtest"
)

// firmactlEnv runs firmactl in the state's folder with extra environment
// and returns its exit code and output.
func (s *state) firmactlEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "firmactl"), args...)
	cmd.Dir, cmd.Env = s.dir, firmadtest.CleanEnv(env...)
	out, err := cmd.CombinedOutput()
	return exitCode(err), string(out)
}

// eventually retries f every 100 ms for up to 15 s, until it is true.
func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, last = f(); ok {
			return
		}
	}
	t.Fatalf("%s: not within 15 s; last:\n%s", what, last)
}

func (s *state) readFile(t *testing.T, rel string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(s.dir, rel)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if mode != 0 && fi.Mode().Perm() != mode {
		t.Errorf("%s has mode %v, want %v", rel, fi.Mode().Perm(), mode)
	}
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

// signCheck signs a digest with key id and checks the signature with pub
// (PEM), as a relying party holding the certificate would.
func (s *state) signCheck(t *testing.T, addr, id, pubPEM, msg string) {
	t.Helper()
	sum := sha256.Sum256([]byte(msg))
	sigFile := filepath.Join(s.dir, id+"-"+hex.EncodeToString(sum[:4])+".sig")
	s.firmactl(t, 0, "sign", "--key", id, "--digest", hex.EncodeToString(sum[:]), "--out", sigFile, addr)
	sig, _ := os.ReadFile(sigFile)
	blk, _ := pem.Decode([]byte(pubPEM))
	if blk == nil {
		t.Fatalf("public key of %s is not PEM: %q", id, pubPEM)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], sig) {
		t.Fatalf("signature by %s does not verify with its public key", id)
	}
}

// The operators' side of issue #19, on one firmad: init writes the
// verifier key; portals create --out keeps the API key off the terminal;
// auditors and staff added and removed with firmactl take effect on
// SIGHUP without a restart and are on the audit log; then the state is
// backed up while firmad runs (docs/operations.md), destroyed, restored,
// and signs again with the same keys (token and KEK-wrapped), and
// 'audit verify --db var/firma.db --signed' passes before and after with
// no --key (init's var/verifier.key). Cost: two firmad starts, about 15 s.
func TestOperations(t *testing.T) {
	s := initState(t)
	vkey := s.readFile(t, "var/verifier.key", 0o644)
	if !strings.HasPrefix(vkey, "firma.cloud/audit+") {
		t.Fatalf("var/verifier.key holds %q", vkey)
	}
	d := s.start(t)
	if m := verifierKeyRe.FindStringSubmatch(d.stderr.String()); m == nil || m[1] != vkey {
		t.Fatalf("firmad signs checkpoints with another key than var/verifier.key (%q):\n%s", vkey, d.stderr)
	}
	addr := "--addr=" + d.grpc
	var portalID string

	t.Run("portals create --out", func(t *testing.T) {
		args := []string{"portals", "create", "--name", "Sede", "--redirect", "https://sede.example.es/ok", "--out", "var/portal.key", addr}
		out := s.firmactl(t, 0, args...)
		if m := portalIDRe.FindStringSubmatch(out); m != nil {
			portalID = m[1]
		}
		key := s.readFile(t, "var/portal.key", 0o600)
		if len(key) < 20 || strings.Contains(out, key) || !strings.Contains(out, "api key\twritten to var/portal.key") {
			t.Fatalf("key %d chars; output:\n%s", len(key), out)
		}
		if out := s.firmactl(t, 2, args...); !strings.Contains(out, "not overwritten") {
			t.Fatalf("second create with the same --out:\n%s", out)
		}
		if list := s.firmactl(t, 0, "portals", "list", addr); strings.Count(list, "Sede") != 1 {
			t.Fatalf("a refused create made a portal:\n%s", list)
		}
	})

	t.Run("auditors and staff on SIGHUP", func(t *testing.T) {
		s.firmactl(t, 0, "auditors", "add", "olga", "--out", "var/olga.token")
		s.firmactl(t, 0, "staff", "add", "ruth", "--role", "registrar", "--out", "var/ruth.token")
		asOlga := []string{"FIRMA_TOKEN=" + s.readFile(t, "var/olga.token", 0o600)}
		query := func(event string) (int, string) {
			return s.firmactlEnv(t, asOlga, "audit", "query", "--event", event, "--json", addr)
		}
		asRuth := []string{"FIRMA_TOKEN=" + s.readFile(t, "var/ruth.token", 0o600)}
		ruthGets := func() (int, string) { return s.firmactlEnv(t, asRuth, "citizens", "get", "99999999R", addr) }
		if code, out := query("staff.created"); code == 0 {
			t.Fatalf("olga read the log before the reload:\n%s", out)
		}
		if _, out := ruthGets(); !strings.Contains(out, "Unauthenticated") {
			t.Fatalf("ruth before the reload:\n%s", out)
		}
		hup := func() {
			if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		hup()
		eventually(t, "olga reads the log after SIGHUP", func() (bool, string) {
			code, out := query("staff.created")
			return code == 0 && strings.Contains(out, `"name":"olga"`) && strings.Contains(out, `"name":"ruth"`) &&
				strings.Contains(out, `"role":"registrar"`), out
		})
		// The registrar is let in (the citizen does not exist).
		if code, out := ruthGets(); code != 1 || !strings.Contains(out, "NotFound") {
			t.Errorf("ruth after the reload: exit %d\n%s", code, out)
		}
		// The operator init made was recorded at firmad's first start.
		if _, out := query("staff.created"); !strings.Contains(out, `"kind":"operator"`) || !strings.Contains(out, `"name":"local-operator"`) {
			t.Errorf("no record of the operator:\n%s", out)
		}
		s.firmactl(t, 0, "staff", "remove", "ruth")
		hup()
		eventually(t, "ruth's removal recorded", func() (bool, string) {
			code, out := query("staff.disabled")
			return code == 0 && strings.Contains(out, `"name":"ruth"`) && !strings.Contains(out, `"name":"olga"`), out
		})
		if _, out := ruthGets(); !strings.Contains(out, "Unauthenticated") {
			t.Errorf("ruth after her removal:\n%s", out)
		}
		s.firmactl(t, 0, "auditors", "remove", "olga")
		hup()
		eventually(t, "olga refused after her removal", func() (bool, string) {
			code, out := query("staff.disabled")
			return code == 1 && strings.Contains(out, "Unauthenticated"), out
		})
		// A bad file changes nothing: the reload fails and says so.
		s.patchConfig(t, [2]string{"    origin: firma.cloud/audit\n", "    origin: not valid+\n"})
		hup()
		eventually(t, "a failed reload logged", func() (bool, string) {
			return strings.Contains(d.stderr.String(), "reload of auditors and staff failed"), ""
		})
		s.patchConfig(t, [2]string{"    origin: not valid+\n", "    origin: firma.cloud/audit\n"})
		if _, m := get(t, "http://"+d.http+"/metrics"); !strings.Contains(m, `firma_config_reloads_total{result="failed"} 1`) ||
			!strings.Contains(m, `firma_config_reloads_total{result="ok"} 3`) {
			t.Errorf("reload metrics:\n%s", grepLines(m, "firma_config_reloads_total"))
		}
	})

	t.Run("README audit how-to", func(t *testing.T) {
		s.readmeAudit(t, d, portalID)
	})

	// A citizen's keys, one in the token and one wrapped by the KEK.
	keys := map[string]string{} // id -> public key PEM
	for _, mode := range []string{"token", "wrapped"} {
		pub := filepath.Join(s.dir, mode+".pem")
		out := s.firmactl(t, 0, "keys", "generate", "--user", "12345678Z", "--type", "ec-p256", "--mode", mode, "--out", pub, addr)
		m := keyIDRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no key id in:\n%s", out)
		}
		b, _ := os.ReadFile(pub)
		keys[m[1]] = string(b)
		s.signCheck(t, addr, m[1], string(b), "antes de la copia")
	}

	out := s.firmactl(t, 0, "backup", "--state", "var", "--out", "backup")
	if !strings.Contains(out, "firmad is running") || !strings.Contains(out, "online snapshot") || strings.Contains(out, "not in the backup") {
		t.Fatalf("backup:\n%s", out)
	}
	manifest := s.readFile(t, "backup/MANIFEST", 0o600)
	for _, f := range []string{"  firma.db\n", "  firmad.yaml\n", "  hsm.pin\n", "  hsm.so-pin\n", "  operator.token\n",
		"  audit-pseudonym.key\n", "  verifier.key\n", "  softhsm/softhsm2.conf\n", "  softhsm/tokens/"} {
		if !strings.Contains(manifest+"\n", f) {
			t.Errorf("MANIFEST lacks %q:\n%s", strings.TrimSpace(f), manifest)
		}
	}
	if strings.Contains(manifest, "firma.db-") || strings.Contains(manifest, ".lock") {
		t.Errorf("MANIFEST holds live database or lock files:\n%s", manifest)
	}
	if out := s.checkSignedNoKey(t, d); !strings.Contains(out, "verified") {
		t.Fatal(out)
	}

	if err := os.RemoveAll(filepath.Join(s.dir, "var")); err != nil {
		t.Fatal(err)
	}
	if out := s.firmactl(t, 0, "restore", "--from", "backup", "--state", "var"); !strings.Contains(out, "restored") {
		t.Fatalf("restore:\n%s", out)
	}
	if out := s.firmactl(t, 1, "restore", "--from", "backup", "--state", "var"); !strings.Contains(out, "exists") {
		t.Fatalf("restore over a state:\n%s", out)
	}
	d = s.start(t)
	addr = "--addr=" + d.grpc
	for id, pub := range keys {
		again := filepath.Join(s.dir, id+"-restored.pem")
		s.firmactl(t, 0, "keys", "pubkey", id, "--out", again, addr)
		if b, _ := os.ReadFile(again); string(b) != pub {
			t.Errorf("key %s has another public key after the restore", id)
		}
		s.signCheck(t, addr, id, pub, "después de restaurar")
	}
	out = s.checkSignedNoKey(t, d)
	if !strings.Contains(out, "verified") {
		t.Fatal(out)
	}

	t.Run("tampered or moved backup", func(t *testing.T) {
		// Restored elsewhere, the token directory moves with the state.
		s.firmactl(t, 0, "restore", "--from", "backup", "--state", "elsewhere/var")
		conf := s.readFile(t, "elsewhere/var/softhsm/softhsm2.conf", 0o600)
		if want := filepath.Join(s.dir, "elsewhere/var/softhsm/tokens"); !strings.Contains(conf, "= "+want+"\n") {
			t.Errorf("softhsm2.conf after a move:\n%s", conf)
		}
		if err := os.WriteFile(filepath.Join(s.dir, "backup/hsm.pin"), []byte("0000\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out := s.firmactl(t, 1, "restore", "--from", "backup", "--state", "var3"); !strings.Contains(out, "hsm.pin does not match") {
			t.Fatalf("tampered backup restored:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(s.dir, "var3")); err == nil {
			t.Error("a refused restore left a state folder")
		}
	})
}

// checkSignedNoKey stops d and runs 'audit verify --db var/firma.db
// --signed' as the README has it: the key comes from var/verifier.key.
func (s *state) checkSignedNoKey(t *testing.T, d *daemon) string {
	t.Helper()
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
	out := s.firmactl(t, 0, "audit", "verify", "--db", "var/firma.db", "--signed")
	if !strings.Contains(out, "signed documents checked") {
		t.Fatalf("audit verify --signed:\n%s", out)
	}
	return out
}

var portalIDRe = regexp.MustCompile(`(?m)^id \(app_id\)\s+(\S+)`)

// readmeAudit runs the README's audit how-to (its first sh block under
// "## Audit", read from the README, not copied) in the state's folder with
// bin/firmactl the built one: each line through sh, as an operator pastes
// it. Two lines are the test's: "kill -HUP $(pidof firmad)" would signal
// every firmad on the machine, so this firmad is signalled and the test
// waits for the reload; "export" sets the environment of the lines after
// it. PORTAL_ID is the portal made above.
func (s *state) readmeAudit(t *testing.T, d *daemon, portalID string) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "\n## Audit\n")
	_, block, ok := strings.Cut(sec, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 || portalID == "" {
		t.Fatalf("no sh block in the README's audit section, or no portal (%q)", portalID)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(bin, "firmactl"), filepath.Join(s.dir, "bin", "firmactl"))
	env := []string{"FIRMA_ADDR=" + d.grpc}
	sh := func(line string) (int, string) {
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir, cmd.Env = s.dir, firmadtest.CleanEnv(env...)
		out, err := cmd.CombinedOutput()
		return exitCode(err), string(out)
	}
	ran := 0
	for line := range strings.Lines(block) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(line, "kill -HUP"):
			if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			// Reloaded once the log shows the auditor the line before added.
			eventually(t, "the reload after "+line, func() (bool, string) {
				return strings.Count(d.stderr.String(), "auditors and staff reloaded") >= 4, ""
			})
		case strings.HasPrefix(line, "export "):
			k, v, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
			_, val := sh("printf '%s' " + v)
			env = append(env, k+"="+val)
		default:
			line = strings.ReplaceAll(line, "PORTAL_ID", portalID)
			if code, out := sh(line); code != 0 {
				t.Fatalf("%s: exit %d\n%s", line, code, out)
			} else if strings.Contains(line, "audit verify") && !strings.Contains(out, "verified") {
				t.Errorf("%s:\n%s", line, out)
			}
		}
		ran++
	}
	if ran < 8 {
		t.Errorf("ran %d lines of the README's audit how-to", ran)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
