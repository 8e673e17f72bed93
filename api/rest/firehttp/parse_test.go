package firehttp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/fire"
	"github.com/firma-cloud/firma/transaction"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, body, query string
		want              params
	}{
		{"java", "op=1&appid=A&dat=SGVsbG8=", "", params{"op": "1", "appid": "A", "dat": "SGVsbG8="}},
		{"net leading &", "&op=1&appid=A", "", params{"op": "1", "appid": "A"}},
		{"net repeated op", "appid=A&op=8&op=9", "", params{"op": "8", "appid": "A"}},
		{"padding kept", "config=cmVk==&x=a=b", "", params{"config": "cmVk==", "x": "a=b"}},
		{"empty value", "properties=&upgrade=", "", params{"properties": "", "upgrade": ""}},
		{"percent-encoded", "dat=SGVsbG8%3D", "", params{"dat": "SGVsbG8="}},
		{"plus kept", "dat=a+b", "", params{"dat": "a+b"}},
		{"query first", "op=2", "op=1&appid=Q", params{"op": "1", "appid": "Q"}},
		{"name only", "stoponerror&op=7", "", params{"stoponerror": "", "op": "7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parse([]byte(tc.body), tc.query); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("%v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeB64(t *testing.T) {
	want := []byte{0xfb, 0xff, 0xfe, 'h', 'i'}
	for _, in := range []string{"-__-aGk=", "+//+aGk=", "-__-aGk", "-__-\naGk="} {
		if got, err := decodeB64(in); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"!!", "a", "aGk=aGk="} {
		if _, err := decodeB64(in); err == nil {
			t.Errorf("%q decoded", in)
		}
	}
}

func TestProps(t *testing.T) {
	// Java's Properties.store: comments, escaped : and =, \uXXXX.
	java := "#c\n#Mon Dec 07 23:00:00 CET 2026\nredirectOkUrl=https\\://a/ok?x\\=1\ndocName=Resoluci\\u00F3n\n  mode : explicit\nlong=a\\\n   b\n"
	got, err := props("config", b64s(java))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"redirectOkUrl": "https://a/ok?x=1", "docName": "Resolución", "mode": "explicit", "long": "ab"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	// UTF-8 as the PHP and .NET samples write it; ${} is not expanded.
	if got, err := props("config", b64s("docName=Resolución ${x}\n")); err != nil || got["docName"] != "Resolución ${x}" {
		t.Fatalf("%v, %v", got, err)
	}
	for _, bad := range []string{"%%", b64s("a=\\uZZZZ")} {
		if _, err := props("properties", bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func b64s(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }

func TestJavaFloat(t *testing.T) {
	for f, want := range map[float32]string{0: "0.0", 1: "1.0", 0.5: "0.5", 1 - float32(2)/3: "0.3333333", float32(1) / 3: "0.33333334", 0.1: "0.1"} {
		if got := javaFloat(f); got != want {
			t.Errorf("%v: %q, want %q", f, got, want)
		}
	}
}

// Every FIRe code firma gives comes from the table, with its status; an
// unknown internal error shows no detail.
func TestCodeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Code
	}{
		{missing("subjectid"), UserIDNeeded},
		{missing("docid"), DocumentIDNeeded},
		{fire.ErrUnknownApp, Unauthorized},
		{errs.Wrap(fire.ErrUnsupported, nil, "format FacturaE"), ParamsInvalid},
		{fire.ErrTransaction, InvalidTransaction},
		{&transaction.Error{Code: transaction.CodeWeakRegistration, Message: "basic"}, WeakRegistry},
		{&transaction.Error{Code: transaction.CodeCertificateBlocked}, CertificateBlocked},
		{&transaction.Error{Code: transaction.CodeInvalidRequest, Field: "citizen_id"}, UnknownUser},
		{&transaction.Error{Code: transaction.CodeCancelledByCitizen}, OperationCanceled},
		{&transaction.Error{Code: transaction.CodeRateLimited}, Undefined},
		{&transaction.Error{Code: transaction.CodeUnavailable, Message: "store down; retry"}, Internal},
		{errors.New("boom"), Internal},
	} {
		c, m := codeOf(tc.err)
		if c != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.err, c, tc.want)
		}
		if tc.want == Internal && m != "internal error" && m != "store down; retry" {
			t.Errorf("%v: message %q", tc.err, m)
		}
	}
}
