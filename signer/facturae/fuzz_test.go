package facturae_test

import (
	"os"
	"testing"

	"github.com/firma-cloud/firma/signer/facturae"
	"github.com/firma-cloud/firma/signer/xades"
)

// FuzzCheck feeds arbitrary bytes to Check: it never panics, and what it
// accepts xades.Parse accepts too. As a plain test it runs the seeds only.
func FuzzCheck(f *testing.F) {
	good, err := os.ReadFile("testdata/factura-3.2.2.xml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`<fe:Facturae xmlns:fe="http://www.facturae.es/Facturae/2014/v3.2.1/Facturae"><FileHeader/></fe:Facturae>`))
	f.Add([]byte(`<Facturae xmlns="http://www.facturae.es/Facturae/2009/v3.2/Facturae"><FileHeader><SchemaVersion>3.2</SchemaVersion></FileHeader><Parties/><Invoices/></Facturae>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if facturae.Check(b, xades.Limits{MaxBytes: 1 << 20}) == nil {
			if _, err := xades.Parse(b, xades.Limits{MaxBytes: 1 << 20}); err != nil {
				t.Fatalf("Check accepted what Parse refuses: %v", err)
			}
		}
	})
}
