package registry_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/firma-cloud/firma/registry"
)

func FuzzNormalizeID(f *testing.F) {
	for _, s := range []string{"12345678Z", "x1234567l", "12.345.678-z", "IDCES-12345678Z", "Z0000000", "", "ñ2345678Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := registry.NormalizeID("id", s)
		if err != nil {
			return
		}
		if len(id) != 9 {
			t.Fatalf("NormalizeID(%q) = %q", s, id)
		}
		if again, err := registry.NormalizeID("id", id); err != nil || again != id {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, id, again, err)
		}
		if _, err := registry.IDFromSerialNumber("IDCES-" + id); err != nil {
			t.Fatalf("IDFromSerialNumber(IDCES-%s): %v", id, err)
		}
	})
}

func FuzzParseHours(f *testing.F) {
	for _, s := range []string{registry.DefaultHoursSpec, "Sat-Sun 10:00-13:00; Wed 16:00-20:00", "Fri-Mon 00:00-24:00", "Mon 9-14", ";;"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, spec string, offset int64) {
		h, err := registry.ParseHours(spec, "Europe/Madrid")
		if err != nil {
			return
		}
		at := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC).Add(time.Duration(offset%(14*24*3600)) * time.Second)
		next := h.Next(at)
		if !next.After(at) || next.Sub(at) > 8*24*time.Hour {
			t.Fatalf("%q: Next(%v) = %v", spec, at, next)
		}
		if !h.Open(next) {
			t.Fatalf("%q: closed at its next opening %v", spec, next)
		}
	})
}

func FuzzImport(f *testing.F) {
	f.Add([]byte("id,given_name,surnames,mobile,email,method\n12345678Z,Ana,Gil,612345678,a@example.es,in_person\n"))
	f.Add([]byte("id,given_name,surnames,mobile,email,method,level,fiscal_address\n\"12345678Z\",\"A\"\"\",B,6,x,video_call,basic,\n"))
	f.Add([]byte("\ufeffID,GIVEN_NAME,surnames,mobile,email,method\nX1234567L,a,b,+33612345678,c@d.es,invitation_letter"))
	e := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, csv []byte) {
		rep, err := e.reg.Import(context.Background(), bytes.NewReader(csv), registry.ImportOptions{BatchSize: 7})
		if err != nil {
			return
		}
		if rep.Created+len(rep.Existing)+len(rep.Bad) != rep.Rows {
			t.Fatalf("rows %d != created %d + existing %d + bad %d", rep.Rows, rep.Created, len(rep.Existing), len(rep.Bad))
		}
	})
}
