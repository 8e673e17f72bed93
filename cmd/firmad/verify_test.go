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
	"github.com/firma-cloud/firma/verify/testpki"
)

// setupVerify on an app without a built-in CA: it answers 503 until trust
// anchors exist, and verifies with those of FIRMA_VERIFY_ROOTS.
func TestSetupVerify(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	plain, err := os.ReadFile("../../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := signer.PAdES(ctx, plain, key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	post := func(t *testing.T, a *app) (int, map[string]any) {
		t.Helper()
		hs := httptest.NewServer(a.mux)
		defer hs.Close()
		resp, err := http.Post(hs.URL+"/v1/verify", "application/pdf", bytes.NewReader(pdf))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	newApp := func() *app {
		return &app{cfg: config.Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), grpc: grpc.NewServer(), mux: rest.NewMux()}
	}

	t.Run("no trust anchors", func(t *testing.T) {
		a := newApp()
		if err := a.setupVerify(ctx); err != nil {
			t.Fatal(err)
		}
		if code, m := post(t, a); code != http.StatusServiceUnavailable {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("roots from the environment", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv(EnvVerifyRoots, testpki.WritePEM(t, dir, "roots.pem", pki.Root.Cert))
		t.Setenv(EnvVerifyTSARoots, testpki.WritePEM(t, dir, "tsa.pem", pki.TSARoot.Cert))
		a := newApp()
		if err := a.setupVerify(ctx); err != nil {
			t.Fatal(err)
		}
		if code, m := post(t, a); code != http.StatusOK || m["verdict"] != "VERDICT_VALID" {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("unreadable roots", func(t *testing.T) {
		t.Setenv(EnvVerifyRoots, "/nonexistent/roots.pem")
		if err := newApp().setupVerify(ctx); err == nil {
			t.Fatal("setupVerify accepted a missing roots file")
		}
	})
}
