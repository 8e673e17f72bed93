package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/verify/testpki"
)

// POST /v1/verify reports the long-term level reached, checking the
// material a B-LTA PDF carries with every responder of its PKI down.
func TestVerifyLongTermOffline(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	plain, err := os.ReadFile("../../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := signer.PAdES(ctx, plain, key, chain, signer.Options{Level: signer.LevelLTA, Timestamper: pki.Timestamper(t), Validation: &ltv.Gatherer{}}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pki.SetDown(true, true)
	t.Cleanup(func() { pki.SetDown(false, false) })
	dir := t.TempDir()
	t.Setenv(EnvVerifyRoots, testpki.WritePEM(t, dir, "roots.pem", pki.Root.Cert))
	t.Setenv(EnvVerifyTSARoots, testpki.WritePEM(t, dir, "tsa.pem", pki.TSARoot.Cert))
	a := &app{cfg: config.Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), grpc: grpc.NewServer(), mux: rest.NewMux()}
	if err := a.setupVerify(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a.mux)
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/v1/verify", "application/pdf", bytes.NewReader(pdf))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Verdict    string `json:"verdict"`
		Signatures []struct {
			Level string `json:"level"`
		} `json:"signatures"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || m.Verdict != "VERDICT_VALID" || len(m.Signatures) != 2 || m.Signatures[0].Level != "B-LTA" {
		t.Fatalf("%d %+v", resp.StatusCode, m)
	}
}
