package fire

import (
	"encoding/base64"
	"sort"
	"strings"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/transaction"
)

// What firma does with each FIRe value. Every table is keyed by the
// value in lower case; a value firma cannot honour yet carries the reason
// it is refused, so that adding a format, operation or upgrade is one
// line here once firma can make it.

type formatSpec struct {
	format    signer.Format
	mediaType string // what the approval page says the document is
	refuse    string
}

var formats = map[string]formatSpec{
	"cades":            {format: signer.FormatCAdES, mediaType: "application/octet-stream"},
	"pades":            {format: signer.FormatPAdES, mediaType: "application/pdf"},
	"none":             {format: signer.FormatRaw, mediaType: "application/octet-stream"},
	"xades":            {format: signer.FormatXAdES, mediaType: "application/xml"},
	"facturae":         {format: signer.FormatFacturae, mediaType: "application/xml"},
	"cades-asic-s":     {format: signer.FormatASiCSCAdES, mediaType: "application/octet-stream"},
	"xades-asic-s":     {format: signer.FormatASiCSXAdES, mediaType: "application/octet-stream"},
	"cades-asic-s-tri": {refuse: "three-phase (client-side) signing is not offered: use CAdES-ASiC-S"},
	"xades-asic-s-tri": {refuse: "three-phase (client-side) signing is not offered: use XAdES-ASiC-S"},
}

// cops: cosign and countersign take the existing signature as the data
// (dat or the batch document); a PDF is co-signed by signing it again.
var cops = map[string]signer.Operation{
	"sign":        signer.OpSign,
	"cosign":      signer.OpCoSign,
	"countersign": signer.OpCounterSign,
}

var algorithms = map[string]struct {
	hash   string
	refuse string
}{
	"sha256withrsa": {hash: transaction.HashSHA256}, "sha256": {hash: transaction.HashSHA256},
	"sha384withrsa": {hash: transaction.HashSHA384}, "sha384": {hash: transaction.HashSHA384},
	"sha512withrsa": {hash: transaction.HashSHA512}, "sha512": {hash: transaction.HashSHA512},
	"sha1withrsa": {refuse: "SHA-1 signatures are not made: use SHA256withRSA or stronger"},
	"sha1":        {refuse: "SHA-1 signatures are not made: use SHA256withRSA or stronger"},
}

type upgradeSpec struct {
	level  signer.Level // "" keeps firma's default level
	refuse string
}

const noLongTerm = "the CAdES-ES long-term forms (ES-C, ES-X, ES-A, ES-LTV) are not made: ask for LT-LEVEL or LTA-LEVEL"

// upgrades: "verify" validates without upgrading; firma verifies every
// signature before it is released, so it asks for nothing more.
var upgrades = map[string]upgradeSpec{
	"": {}, "verify": {},
	"t-level": {level: signer.LevelT}, "es-t": {level: signer.LevelT},
	"lt-level": {level: signer.LevelLT}, "lta-level": {level: signer.LevelLTA}, "es-ltv": {refuse: noLongTerm},
	"es-c": {refuse: noLongTerm}, "es-x": {refuse: noLongTerm}, "es-x-1": {refuse: noLongTerm}, "es-x-2": {refuse: noLongTerm},
	"es-x-l": {refuse: noLongTerm}, "es-x-l-1": {refuse: noLongTerm}, "es-x-l-2": {refuse: noLongTerm}, "es-a": {refuse: noLongTerm},
}

// propertyRule decides one extraParams key: nil accepts the value
// (it does not change a firma signature), a string refuses it.
type propertyRule func(value string, f signer.Format) string

func ignore(string, signer.Format) string { return "" }

func refuseAlways(reason string) propertyRule {
	return func(string, signer.Format) string { return reason }
}

const noVisible = "visible PAdES signatures and their attributes are not made by firma yet"

var properties = map[string]propertyRule{
	// Certificate choice and dialogs: firma signs with the citizen's one
	// certificate, without dialogs.
	"filters": ignore, "filter": ignore, "headless": ignore,
	"mode": func(v string, f signer.Format) string {
		if f != signer.FormatCAdES || strings.EqualFold(v, "explicit") || strings.EqualFold(v, "implicit") {
			return ""
		}
		return "mode must be explicit or implicit"
	},
	"signingCertificateV2": func(v string, _ signer.Format) string {
		if strings.EqualFold(v, "true") {
			return ""
		}
		return "firma always uses signingCertificateV2"
	},
	"expPolicy": func(v string, _ signer.Format) string {
		if strings.EqualFold(strings.TrimSpace(v), signer.PolicyNameAGE) {
			return ""
		}
		return "the one policy firma expands is FirmaAGE"
	},
	// An explicit policy is taken when it is the AGE one, as AutoFirma
	// writes it; others are configured in firma and named by the portal
	// API, not described per request.
	"policyIdentifier": func(v string, _ signer.Format) string {
		if strings.TrimPrefix(strings.TrimSpace(v), "urn:oid:") == signer.PolicyAGE.OID.String() {
			return ""
		}
		return "the one explicit policy firma takes from FIRe is the AGE one (" + signer.PolicyAGE.OID.String() + "); expPolicy=FirmaAGE names it"
	},
	"policyIdentifierHash": func(v string, _ signer.Format) string {
		if strings.TrimSpace(v) == base64.StdEncoding.EncodeToString(signer.PolicyAGE.Digest) {
			return ""
		}
		return "not the hash of the AGE policy document"
	},
	"policyIdentifierHashAlgorithm": func(v string, _ signer.Format) string {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "sha1", "sha-1", "http://www.w3.org/2000/09/xmldsig#sha1", "1.3.14.3.2.26":
			return ""
		}
		return "the AGE policy's hash is a SHA-1"
	},
	"policyQualifier": func(v string, _ signer.Format) string {
		if strings.HasSuffix(strings.TrimSpace(v), "/politica_de_firma_anexo_1.pdf") {
			return ""
		}
		return "not the URL of the AGE policy document"
	},
	"layer2Text":              refuseAlways(noVisible),
	"layer2FontFamily":        refuseAlways(noVisible),
	"layer2FontSize":          refuseAlways(noVisible),
	"layer2FontStyle":         refuseAlways(noVisible),
	"layer2FontColor":         refuseAlways(noVisible),
	"signaturePage":           refuseAlways(noVisible),
	"signaturePages":          refuseAlways(noVisible),
	"signatureField":          refuseAlways(noVisible),
	"signatureRubricImage":    refuseAlways(noVisible),
	"signatureProductionCity": refuseAlways("signature attributes (production place, reason, contact) are not added by firma yet"),
	"signReason":              refuseAlways("signature attributes (production place, reason, contact) are not added by firma yet"),
	"signerContact":           refuseAlways("signature attributes (production place, reason, contact) are not added by firma yet"),
}

// propertyPrefixes cover the numbered and positional families.
var propertyPrefixes = map[string]propertyRule{
	"filters.":                ignore,
	"signaturePositionOnPage": refuseAlways(noVisible),
	"imagePositionOnPage":     refuseAlways(noVisible),
}

func lookup[T any](table map[string]T, field, value string) (T, error) {
	v, ok := table[strings.ToLower(strings.TrimSpace(value))]
	if !ok {
		known := make([]string, 0, len(table))
		for k := range table {
			if k != "" {
				known = append(known, k)
			}
		}
		sort.Strings(known)
		return v, errs.Wrap(ErrUnsupported, nil, "%s %q is not known to firma (known: %s)", field, value, strings.Join(known, ", "))
	}
	return v, nil
}

// docOptions reads what accepted properties ask of the signature: the
// AGE policy (expPolicy or its explicit identifier) and attached CAdES.
func docOptions(props map[string]string, f signer.Format, op signer.Operation) (policy string, attached bool) {
	if props["expPolicy"] != "" || props["policyIdentifier"] != "" {
		policy = signer.PolicyNameAGE
	}
	// A cosignature or countersignature keeps the existing packaging.
	attached = f == signer.FormatCAdES && op == signer.OpSign && strings.EqualFold(strings.TrimSpace(props["mode"]), "implicit")
	return policy, attached
}

func refused(field, value, reason string) error {
	return errs.Wrap(ErrUnsupported, nil, "%s %q: %s", field, value, reason)
}

// checkProperties refuses every key that would change the signature in a
// way firma cannot make, and every key it does not know: none is dropped
// silently.
func checkProperties(props map[string]string, f signer.Format) error {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rule, ok := properties[k]
		if !ok {
			for p, r := range propertyPrefixes {
				if strings.HasPrefix(k, p) {
					rule, ok = r, true
					break
				}
			}
		}
		if !ok {
			return errs.Wrap(ErrUnsupported, nil, "property %q is not supported by firma; remove it or ask for it to be added", k)
		}
		if why := rule(props[k], f); why != "" {
			return errs.Wrap(ErrUnsupported, nil, "property %s=%s: %s", k, props[k], why)
		}
	}
	return nil
}
