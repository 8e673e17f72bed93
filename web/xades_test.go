package web_test

import (
	"context"
	"testing"

	"github.com/firma-cloud/firma/transaction"
)

// TestPageShowsXMLAndContainerFormats: an XML document in XAdES and a
// document in an ASiC container are shown by name and format like any other.
func TestPageShowsXMLAndContainerFormats(t *testing.T) {
	f := newFixture(t, nil)
	c, err := f.Tx.Create(context.Background(), f.portal, transaction.CreateRequest{CitizenID: f.citizen, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{
			{Name: "Factura 2026-0042.xml", MediaType: "application/xml", Content: []byte(`<Factura xmlns="urn:x"><Total>121.00</Total></Factura>`), Format: "xades"},
			{Name: "Anexo.txt", MediaType: "text/plain", Content: []byte("anexo"), Format: "asic-e-xades"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	page := f.get(t, "/sign/"+c.ID, "Accept-Language", "es")
	wantIn(t, page.body, "Factura 2026-0042.xml", "XAdES", "Anexo.txt", "ASiC-E (XAdES)")
}
