package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/firma-cloud/firma/registry"
)

// BenchmarkAuthenticate measures a Cl@ve Permanente login with the
// production argon2id cost (64 MiB, 3 passes), the bound on logins per
// second per core.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, func(o *registry.Options) { o.Argon2 = registry.DefaultArgon2 })
	conf, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))
	if err != nil {
		b.Fatal(err)
	}
	if err := e.reg.SetPassword(ctx, "12345678Z", conf.ActivationCode, "Correct7Horse"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.reg.Authenticate(ctx, "12345678Z", "Correct7Horse"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImport measures a bulk import of 10,000 rows into SQLite.
func BenchmarkImport(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("id,given_name,surnames,mobile,email,method\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&buf, "%s,Nombre,Apellido,6%08d,c%d@example.es,in_person\n", validDNI(30000000+i), i, i)
	}
	csv := buf.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, nil)
		b.StartTimer()
		rep, err := e.reg.Import(context.Background(), bytes.NewReader(csv), registry.ImportOptions{})
		if err != nil || rep.Created != 10000 {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N)/10000*1e6, "µs/row")
}
