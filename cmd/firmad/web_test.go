package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestWebAndCSCServed: the built firmad serves the approval page, its
// assets and the CSC API next to the portal API.
func TestWebAndCSCServed(t *testing.T) {
	s := initState(t)
	d := s.start(t)
	defer d.stop(t)
	base := "http://" + d.http

	code, body := get(t, base+"/csc/v2/info")
	var info struct {
		Specs   string   `json:"specs"`
		Methods []string `json:"methods"`
	}
	if err := json.Unmarshal([]byte(body), &info); code != 200 || err != nil || info.Specs != "2.0.0.2" || len(info.Methods) != 5 {
		t.Fatalf("/csc/v2/info: %d %s", code, body)
	}
	if code, body := get(t, base+"/sign/0123456789abcdef0123456789abcdef"); code != 404 || !strings.Contains(body, "La solicitud de firma no existe") {
		t.Fatalf("/sign/<unknown>: %d %s", code, body)
	}
	if code, body := get(t, base+"/sign/assets/style.css"); code != 200 || !strings.Contains(body, "@media") {
		t.Fatalf("style.css: %d", code)
	}
	if code, body := get(t, base+"/csc/v2/credentials/list"); code != 405 {
		t.Fatalf("GET credentials/list: %d %s", code, body)
	}
}
