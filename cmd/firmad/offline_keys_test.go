package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// verifierKeyRe is shared with tsa_e2e_test.go.
var keyChangesRe = regexp.MustCompile(`(\d+) key changes asked; 0 without a result`)

// TestOfflineKeyChangesAudited: the keys firmactl makes on the HSM
// directly (init's key-encryption key and CA keys, kek init) are on the
// state's audit log with who asked, each intent followed by its result, as
// `firmactl audit verify` reports once firmad has signed a checkpoint over
// them; an idempotent re-run records nothing; and while a running firmad
// holds the audit log, a key change is refused before the HSM is asked.
// Cost: one init and one firmad start (a few seconds).
func TestOfflineKeyChangesAudited(t *testing.T) {
	s := initState(t) // KEK, root and issuing CA keys
	if out := s.firmactl(t, 0, "kek", "init", "--state", "var", "--label", "cluster-kek"); !strings.Contains(out, "made key-encryption key") {
		t.Fatalf("kek init:\n%s", out)
	}
	if out := s.firmactl(t, 0, "kek", "init", "--state", "var", "--label", "cluster-kek"); !strings.Contains(out, "found key-encryption key") {
		t.Fatalf("kek init again:\n%s", out)
	}

	d := s.start(t)
	// firmad holds the SQLite audit journal: firmactl cannot record, so it
	// makes nothing.
	out := s.firmactl(t, 1, "kek", "init", "--state", "var", "--label", "refused-kek")
	if !strings.Contains(out, "audit log") {
		t.Fatalf("kek init under a running firmad does not name the audit log:\n%s", out)
	}
	if code := d.stop(t); code != 0 { // signs a checkpoint at shutdown
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
	m := verifierKeyRe.FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("firmad logged no verifier key:\n%s", d.stderr)
	}

	out = s.firmactl(t, 0, "audit", "verify", "--db", "var/firma.db", "--key", m[1])
	// init's KEK, the root, issuing, OCSP and audit checkpoint keys, kek
	// init's KEK, and what firmad made at its first start: none without a
	// result.
	if m := keyChangesRe.FindStringSubmatch(out); m == nil || atoi(m[1]) < 6 {
		t.Fatalf("audit verify does not report the key changes (6 by firmactl):\n%s", out)
	}

	out = s.firmactl(t, 0, "audit", "query", "--db", "var/firma.db", "--event", "key.generate_requested", "--event", "key.generated", "--json")
	byActor := map[string][]string{}
	for line := range strings.Lines(out) {
		var r struct {
			Event   string `json:"event"`
			Outcome string `json:"outcome"`
			Actor   struct{ Role, ID string }
			KeyID   string            `json:"key_id"`
			Details map[string]string `json:"details"`
		}
		if !strings.HasPrefix(line, "{") {
			continue
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if strings.HasPrefix(r.Actor.ID, "firmactl") {
			if r.Actor.Role != "admin" || r.Outcome != "success" {
				t.Errorf("offline record %+v", r)
			}
			byActor["firmactl"] = append(byActor["firmactl"], r.Event+" "+r.KeyID+" "+r.Details["purpose"])
		}
	}
	got := strings.Join(byActor["firmactl"], "\n")
	for _, want := range []string{
		"key.generate_requested - kek", "key.generated kek:firma-kek@firma kek",
		"key.generated kek:cluster-kek@firma kek", "key.generate_requested - audit-checkpoint",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q among firmactl's key records:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "key.generate_requested"); n != 6 || strings.Count(got, "key.generated ") != 6 {
		t.Errorf("want 6 intents and 6 results by firmactl (KEK, root, issuing, OCSP, audit checkpoint, cluster KEK):\n%s", got)
	}
	if strings.Contains(got, "refused-kek") {
		t.Errorf("the refused change was recorded:\n%s", got)
	}
	// The refused one was never made.
	if out := s.firmactl(t, 0, "kek", "init", "--state", "var", "--label", "refused-kek"); !strings.Contains(out, "made key-encryption key") {
		t.Fatalf("the key-encryption key refused earlier exists:\n%s", out)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
