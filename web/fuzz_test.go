package web

import "testing"

// FuzzCommonName: any distinguished name string is shown without a panic.
func FuzzCommonName(f *testing.F) {
	f.Add(`CN=GARCÍA\, LUCÍA,C=ES`)
	f.Add(`\`)
	f.Add(`CN=#0c03616263+O=x`)
	p := &page{}
	f.Fuzz(func(t *testing.T, dn string) {
		p.CommonName(dn)
	})
}
