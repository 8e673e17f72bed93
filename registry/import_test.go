package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/store"
)

func TestImportSample(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	f, err := os.Open("testdata/import_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := e.reg.Import(ctx, f, registry.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantBad := map[int]string{
		3:  "id: the check letter A",
		5:  "mobile:",
		6:  "level:",
		7:  "email:",
		8:  "method:",
		9:  "repeats line 2",
		10: "quote",
	}
	got := map[int]string{}
	for _, b := range rep.Bad {
		got[b.Line] = b.Error()
	}
	for line, want := range wantBad {
		if !strings.Contains(got[line], want) {
			t.Errorf("line %d: got %q, want an error containing %q", line, got[line], want)
		}
	}
	if len(rep.Bad) != len(wantBad) || rep.Created != 3 || rep.Rows != 10 {
		t.Fatalf("report rows=%d created=%d bad=%v", rep.Rows, rep.Created, rep.Bad)
	}
	for _, id := range []string{"12345678Z", "X1234567L", "11234567X"} {
		e.citizen(t, id)
	}
	if c := e.citizen(t, "11234567X"); c.Level != "advanced" || c.Method != "electronic_certificate" {
		t.Fatalf("imported %+v", c)
	}
	if r, err := e.db.FiscalRecord(ctx, "12345678Z"); err != nil || r.Address != "Calle Mayor 1, 28013 Madrid" {
		t.Fatalf("fiscal record %+v, %v", r, err)
	}
	// Importing again keeps what is there and says so by line.
	f.Seek(0, 0)
	rep, err = e.reg.Import(ctx, f, registry.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 0 || len(rep.Existing) != 3 || rep.Existing[0].Line != 2 {
		t.Fatalf("re-import: created=%d existing=%v", rep.Created, rep.Existing)
	}
}

func TestImportHeaderErrors(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct{ csv, want string }{
		{"", "bad CSV header line"},
		{"id,given_name,surnames,mobile,email\n", `missing column "method"`},
		{"id,given_name,surnames,mobile,email,method,shoe_size\n", `unknown column "shoe_size"`},
	} {
		if _, err := e.reg.Import(context.Background(), strings.NewReader(tt.csv), registry.ImportOptions{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.csv, err, tt.want)
		}
	}
}

// validDNI returns the DNI of number n with its check letter.
func validDNI(n int) string {
	return fmt.Sprintf("%08d%c", n, "TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
}

func TestImportTenThousand(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	var buf bytes.Buffer
	buf.WriteString("id,given_name,surnames,mobile,email,method\n")
	bad := map[int]bool{} // line numbers
	for i := 0; i < 10000; i++ {
		line := i + 2
		id, mobile, email := validDNI(10000000+i), fmt.Sprintf("6%08d", i), fmt.Sprintf("c%d@example.es", i)
		switch {
		case i%1000 == 7: // wrong check letter
			id = id[:8] + string("TRWAGMYFPDXBNJZSQVHLCKE"[(10000000+i+1)%23])
			bad[line] = true
		case i%1000 == 500: // landline
			mobile = fmt.Sprintf("91%07d", i)
			bad[line] = true
		}
		method := [...]string{"in_person", "video_call", "invitation_letter", "electronic_certificate"}[i%4]
		fmt.Fprintf(&buf, "%s,Nombre%c,Apellido Prueba,%s,%s,%s\n", id, 'a'+rune(i%26), mobile, email, method)
	}
	var progress []int
	rep, err := e.reg.Import(ctx, &buf, registry.ImportOptions{Progress: func(done int) { progress = append(progress, done) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 10000 || rep.Created != 10000-len(bad) || len(rep.Bad) != len(bad) {
		t.Fatalf("rows=%d created=%d bad=%d, want 10000/%d/%d", rep.Rows, rep.Created, len(rep.Bad), 10000-len(bad), len(bad))
	}
	for _, b := range rep.Bad {
		if !bad[b.Line] {
			t.Errorf("line %d reported bad: %v", b.Line, b.Err)
		}
	}
	if len(progress) < 10 || progress[len(progress)-1] != 10000 {
		t.Fatalf("progress calls %v", progress)
	}
	var n int
	if err := e.db.SQL().QueryRow("SELECT COUNT(*) FROM citizens").Scan(&n); err != nil || n != rep.Created {
		t.Fatalf("stored %d citizens (%v), want %d", n, err, rep.Created)
	}
	cs, err := e.reg.Citizens(ctx, store.CitizenQuery{Level: "advanced", Limit: 1000})
	if err != nil || len(cs) != 1000 {
		t.Fatalf("list advanced: %d, %v", len(cs), err)
	}
}
