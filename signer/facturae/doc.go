// Package facturae signs Spanish electronic invoices (FacturaE 3.2, 3.2.1
// and 3.2.2, the format FACe takes) as the FacturaE signature policy 3.1
// asks: XAdES-EPES enveloped in the invoice, the signature the last child
// of the Facturae root element, the policy identified by its URL and the
// SHA-1 digest of its document (xades.PolicyFacturae31).
//
// Before signing, Check reads the invoice: it must be safe XML
// (xades.Parse: no DOCTYPE, within the limits) and have the structure the
// FacturaE schema requires of the parts a signature depends on: the root
// in the namespace of a 3.2.x version, FileHeader with a SchemaVersion of
// that version, a Modality and InvoiceIssuerType of the schema's
// enumerations, a third party when the issuer type says so and the Batch
// totals; Parties with a seller and a buyer identified by their tax
// identification; Invoices with as many Invoice elements as the batch
// declares (one when the modality is individual), each with its header,
// issue data, taxes, totals and items in the schema's order; and no
// signature yet (the schema allows one). A refusal names the line.
//
// This is a structural check written here, not validation against the
// FacturaE XSD: the official schema text (Facturaev3_2_2.xml, about 185 KB
// with its bilingual annotations, and the xmldsig-core schema it imports)
// is not vendored, so the value types (amounts, dates, lengths, code
// lists other than the ones above) are not checked.
package facturae
