package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

var kcvRe = regexp.MustCompile(`check value ([0-9a-f]{16})`)

func kcvOf(t *testing.T, out string) string {
	t.Helper()
	m := kcvRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no check value in:\n%s", out)
	}
	return m[1]
}

// soState is a caState whose token's SO PIN is in STATE/hsm.so-pin, as
// 'firmactl init' leaves it.
func soState(t *testing.T) (string, *config.Config, *softhsmtest.Token) {
	t.Helper()
	state, cfg := caState(t)
	// caState made the token; find its SO PIN by making the state's token
	// ours: a fresh token with known PINs replaces it in the config.
	tok := softhsmtest.New(t)
	cfg.HSM.TokenLabel = tok.Label
	cfg.HSM.PIN = ""
	if err := os.WriteFile(cfg.HSM.PINFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "hsm.so-pin"), []byte(tok.SOPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeConfig(filepath.Join(state, "firmad.yaml"), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.HSM.PIN = config.Secret(tok.PIN)
	return state, cfg, tok
}

// The documented procedure: 'kek init' on the first node, 'kek clone' to a
// token reachable from it, and the three-step transport-key / export /
// import between hosts; a key wrapped on the first token then signs on the
// token the KEK went to by the three steps.
func TestKEKCommands(t *testing.T) {
	src, _, srcTok := soState(t)
	dstB := softhsmtest.New(t)
	far, _, farTok := soState(t)
	// Every token is made before the module is first loaded: SoftHSM2
	// reads its slots once per C_Initialize.
	plain, _, _ := soState(t)
	dir := t.TempDir()
	pinB := filepath.Join(dir, "b.pin")
	os.WriteFile(pinB, []byte(dstB.PIN), 0o600)
	const label = "cluster-kek"

	out := mustRun(t, nil, "kek", "init", "--state", src, "--label", label)
	kcv := kcvOf(t, out)
	if !strings.Contains(out, "made key-encryption key") {
		t.Fatalf("kek init:\n%s", out)
	}
	if out := mustRun(t, nil, "kek", "init", "--state", src, "--label", label); !strings.Contains(out, "found") || kcvOf(t, out) != kcv {
		t.Fatalf("second kek init:\n%s", out)
	}
	out = mustRun(t, nil, "kek", "clone", "--state", src, "--label", label, "--to-token", dstB.Label, "--to-pin-file", pinB)
	if kcvOf(t, out) != kcv {
		t.Fatalf("kek clone:\n%s", out)
	}

	tp, blob := filepath.Join(dir, "transport.pem"), filepath.Join(dir, "kek.wrapped")
	mustRun(t, nil, "kek", "transport-key", "--state", far, "--out", tp)
	out = mustRun(t, nil, "kek", "export", "--state", src, "--label", label, "--transport", tp, "--out", blob)
	if kcvOf(t, out) != kcv {
		t.Fatalf("kek export:\n%s", out)
	}
	bad := []byte(kcv)
	if bad[0] == '0' {
		bad[0] = '1'
	} else {
		bad[0] = '0'
	}
	if code, o, e := firmactl(t, nil, "kek", "import", "--state", far, "--label", label, "--in", blob, "--check-value", string(bad)); code != 1 ||
		!strings.Contains(o+e, "check value mismatch") {
		t.Fatalf("import with a wrong check value: exit %d\n%s%s", code, o, e)
	}
	// The failed import used up the transport key: the procedure restarts.
	mustRun(t, nil, "kek", "transport-key", "--state", far, "--out", tp)
	mustRun(t, nil, "kek", "export", "--state", src, "--label", label, "--transport", tp, "--out", blob)
	mustRun(t, nil, "kek", "import", "--state", far, "--label", label, "--in", blob, "--check-value", kcv)

	// A key wrapped on the source signs on the far token.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "shared.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	open := func(tok *softhsmtest.Token) *keystore.HSM {
		ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN,
			Mode: keystore.ModeWrapped, KEKLabel: label}, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	ksA := open(srcTok)
	k, err := ksA.Generate(ctx, "12345678Z", keystore.ECP256)
	ksA.Close()
	if err != nil {
		t.Fatal(err)
	}
	ksFar := open(farTok)
	sg, err := ksFar.Signer(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("firmado lejos"))
	sigs, err := sg.SignDigests(ctx, keystore.ECDSA, crypto.SHA256, [][]byte{d[:]})
	if err != nil || !ecdsa.VerifyASN1(k.Public.(*ecdsa.PublicKey), d[:], sigs[0]) {
		t.Fatalf("sign on the far token: %v", err)
	}
	ksFar.Close()

	// The KEK 'firmactl init' makes cannot be cloned: kek init says so.
	ks, err := keystore.Open(ctx, keystore.Config{Module: srcTok.Module, TokenLabel: readLabel(t, plain), PIN: readPIN(t, plain)}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.InitKEK(ctx); err != nil {
		t.Fatal(err)
	}
	ks.Close()
	if code, o, e := firmactl(t, nil, "kek", "init", "--state", plain); code != 1 || !strings.Contains(o+e, "cannot be cloned") {
		t.Fatalf("kek init over a plain KEK: exit %d\n%s%s", code, o, e)
	}
}

func readPIN(t *testing.T, state string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "hsm.pin"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func readLabel(t *testing.T, state string) string {
	t.Helper()
	cfg, err := config.LoadPartial(filepath.Join(state, "firmad.yaml"), func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.HSM.TokenLabel
}
