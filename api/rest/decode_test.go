package rest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/errs"
)

type inner struct {
	Name string `json:"name"`
}

type outer struct {
	Subject string  `json:"subject_id"`
	Docs    []inner `json:"documents,omitempty"`
	One     *inner  `json:"document,omitempty"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, ct, body string
		kind           errs.Kind
		field, detail  string
	}{
		{"ok", "application/json", `{"subject_id":"x","documents":[{"name":"a"}]}`, 0, "", ""},
		{"no content type is JSON", "", `{"subject_id":"x"}`, 0, "", ""},
		{"wrong content type", "text/plain", `{}`, errs.Invalid, "content-type", "content-type: send application/json"},
		{"charset parameter", "application/json; charset=utf-8", `{"subject_id":"x"}`, 0, "", ""},
		{"upper case", "Application/JSON", `{"subject_id":"x"}`, 0, "", ""},
		{"json prefix is not json", "application/jsonpwned", `{}`, errs.Invalid, "content-type", "content-type: send application/json"},
		{"json-seq is not json", "application/json-seq", `{}`, errs.Invalid, "content-type", "content-type: send application/json"},
		{"malformed content type", "application/json;;", `{}`, errs.Invalid, "content-type", "content-type: send application/json"},
		{"syntax", "application/json", `{"subject_id":`, errs.Invalid, "body", "body: not valid JSON for this operation: the body ends too early"},
		{"syntax at byte", "application/json", `{"subject_id" 1}`, errs.Invalid, "body", "body: not valid JSON for this operation: syntax error at byte 15"},
		{"unknown member", "application/json", `{"subject_id":"x","surprise":1,"other":2}`, errs.Invalid, "body",
			`body: not valid JSON for this operation: unknown field "surprise"`},
		{"unknown nested member", "application/json", `{"documents":[{"name":"a"},{"nom":"b"}]}`, errs.Invalid, "body",
			`body: not valid JSON for this operation: unknown field "nom"`},
		{"unknown member behind a pointer", "application/json", `{"document":{"x":1}}`, errs.Invalid, "body",
			`body: not valid JSON for this operation: unknown field "x"`},
		{"wrong type", "application/json", `{"subject_id":1}`, errs.Invalid, "body",
			"body: not valid JSON for this operation: field subject_id has the wrong type"},
		{"two values", "application/json", `{} {}`, errs.Invalid, "body", "body: one JSON object expected"},
		{"too large", "application/json", `{"subject_id":"` + strings.Repeat("x", 100) + `"}`, errs.TooLarge, "", "request body over 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			var v outer
			err := DecodeJSON(httptest.NewRecorder(), r, &v, 64)
			if tt.detail == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			e := errs.As(err)
			if e == nil || e.Kind != tt.kind || e.Field != tt.field || e.Detail != tt.detail {
				t.Fatalf("got %#v, want kind %v field %q detail %q", e, tt.kind, tt.field, tt.detail)
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		declared int64 // -1: not declared (chunked)
		max      int64
		tooLarge bool
	}{
		{"declared", "hello", 5, 64, false},
		{"empty", "", 0, 64, false},
		{"undeclared", "hello", -1, 64, false},
		{"undeclared over the bound", strings.Repeat("x", 65), -1, 64, true},
		{"declared over the bound", strings.Repeat("x", 65), 65, 64, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			r.ContentLength = tt.declared
			got, err := ReadBody(httptest.NewRecorder(), r, tt.max)
			var mbe *http.MaxBytesError
			if tt.tooLarge {
				if !errors.As(err, &mbe) {
					t.Fatalf("err %v, want *http.MaxBytesError", err)
				}
				return
			}
			if err != nil || string(got) != tt.body {
				t.Fatalf("got %q, %v; want %q", got, err, tt.body)
			}
		})
	}
}
