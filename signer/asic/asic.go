// Package asic builds and opens ASiC containers (ETSI EN 319 162-1): a ZIP
// whose first entry is "mimetype", stored uncompressed and without extra
// fields so that its media type sits at a fixed offset, then the signed
// documents, then the signature in META-INF: signature.p7s (a detached
// CAdES over the one document of an ASiC-S) or signatures.xml (an
// asic:XAdESSignatures holding a detached XAdES signature that refers to
// each document by its name).
//
// The ZIP itself is archive/zip's; the container rules are ours. Open reads
// untrusted containers within Limits (entries, bytes per entry, bytes in
// all), refusing names that climb out of the container.
package asic

import (
	"archive/zip"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/signer/xades"
)

// Media types of the two container kinds.
const (
	MimeASiCS = "application/vnd.etsi.asic-s+zip"
	MimeASiCE = "application/vnd.etsi.asic-e+zip"
)

// Entry names of the signatures.
const (
	CAdESEntry = "META-INF/signature.p7s"
	XAdESEntry = "META-INF/signatures.xml"
)

// NSASiC is the namespace of asic:XAdESSignatures.
const NSASiC = "http://uri.etsi.org/02918/v1.2.1#"

// Errors, told apart with errors.Is.
var (
	ErrContainer = errs.Sentinel(errs.Invalid, "bad_asic", "not a valid ASiC container")
	ErrTooLarge  = errs.Sentinel(errs.TooLarge, "asic_too_large", "ASiC container over the size limits")
	ErrName      = errs.Sentinel(errs.Invalid, "bad_asic_name", "bad document name for an ASiC container")
)

// Document is one file in a container.
type Document struct {
	Name    string
	Content []byte
}

// Build writes a container of kind mime (MimeASiCS or MimeASiCE) holding
// docs and, under sigName, the signature sig. modified stamps every entry,
// so that a container is reproducible.
func Build(mime string, docs []Document, sigName string, sig []byte, modified time.Time) ([]byte, error) {
	if mime != MimeASiCS && mime != MimeASiCE {
		return nil, fmt.Errorf("media type %q: %w", mime, ErrContainer)
	}
	if mime == MimeASiCS && len(docs) != 1 {
		return nil, fmt.Errorf("ASiC-S holds exactly one document, not %d: %w", len(docs), ErrContainer)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no document: %w", ErrContainer)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// mimetype: first, stored, no extra field, no data descriptor.
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "mimetype", Method: zip.Store, CRC32: crc(mime),
		CompressedSize64: uint64(len(mime)), UncompressedSize64: uint64(len(mime)), Modified: modified})
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, mime); err != nil {
		return nil, err
	}
	seen := map[string]bool{"mimetype": true}
	for _, d := range append(docs, Document{Name: sigName, Content: sig}) {
		if err := checkName(d.Name); err != nil {
			return nil, err
		}
		if d.Name != sigName && strings.HasPrefix(d.Name, "META-INF/") {
			return nil, fmt.Errorf("%q: %w (META-INF/ is the container's)", d.Name, ErrName)
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("%q twice: %w", d.Name, ErrName)
		}
		seen[d.Name] = true
		w, err := zw.CreateHeader(&zip.FileHeader{Name: d.Name, Method: zip.Deflate, Modified: modified})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(d.Content); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkName accepts a relative slash-separated name that stays inside
// the container.
func checkName(name string) error {
	if name == "" || len(name) > 255 || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") ||
		path.Clean(name) != name || name == "." || strings.HasPrefix(name, "../") || name == ".." || name == "mimetype" ||
		strings.ContainsAny(name, "\x00\r\n") {
		return fmt.Errorf("%q: %w", name, ErrName)
	}
	return nil
}

// WrapXAdES puts a standalone ds:Signature (made with exclusive C14N, so
// that the wrapper's namespace does not enter what was signed) inside an
// asic:XAdESSignatures, as signatures.xml holds it.
func WrapXAdES(sig []byte) ([]byte, error) {
	doc, err := xades.Parse(sig, xades.Limits{})
	if err != nil {
		return nil, err
	}
	out := etree.NewDocument()
	out.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := out.CreateElement("asic:XAdESSignatures")
	root.CreateAttr("xmlns:asic", NSASiC)
	root.AddChild(doc.Root())
	return out.WriteToBytes()
}

// Limits bound what Open reads. The zero value is DefaultLimits.
type Limits struct {
	MaxEntries    int
	MaxEntryBytes int64
	MaxTotalBytes int64
}

// DefaultLimits: 1000 entries, 64 MiB each and in all.
var DefaultLimits = Limits{MaxEntries: 1000, MaxEntryBytes: 64 << 20, MaxTotalBytes: 64 << 20}

// Container is an opened container.
type Container struct {
	MimeType  string
	Documents []Document // in ZIP order, META-INF/ and mimetype left out
	// Signature is the content of signature.p7s or signatures.xml, and
	// SignatureName which of them.
	Signature     []byte
	SignatureName string
}

// Document returns the document named name.
func (c *Container) Document(name string) ([]byte, bool) {
	for _, d := range c.Documents {
		if d.Name == name {
			return d.Content, true
		}
	}
	return nil, false
}

// Open reads a container: mimetype first and stored, every entry within
// lim, no name climbing out, exactly one signature.
func Open(b []byte, lim Limits) (*Container, error) {
	if lim.MaxEntries <= 0 {
		lim = DefaultLimits
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrContainer, err)
	}
	if len(zr.File) > lim.MaxEntries {
		return nil, fmt.Errorf("%d entries: %w", len(zr.File), ErrTooLarge)
	}
	if len(zr.File) == 0 || zr.File[0].Name != "mimetype" || zr.File[0].Method != zip.Store || len(zr.File[0].Extra) != 0 {
		return nil, fmt.Errorf("%w: the first entry must be \"mimetype\", stored uncompressed", ErrContainer)
	}
	c := &Container{}
	var total int64
	read := func(f *zip.File) ([]byte, error) {
		if f.UncompressedSize64 > uint64(lim.MaxEntryBytes) {
			return nil, fmt.Errorf("%q: %w", f.Name, ErrTooLarge)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrContainer, f.Name, err)
		}
		defer rc.Close()
		// The sizes in the headers are not trusted: reading stops past them.
		data, err := io.ReadAll(io.LimitReader(rc, lim.MaxEntryBytes+1))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrContainer, f.Name, err)
		}
		if int64(len(data)) > lim.MaxEntryBytes {
			return nil, fmt.Errorf("%q: %w", f.Name, ErrTooLarge)
		}
		if total += int64(len(data)); total > lim.MaxTotalBytes {
			return nil, fmt.Errorf("over %d bytes uncompressed: %w", lim.MaxTotalBytes, ErrTooLarge)
		}
		return data, nil
	}
	mime, err := read(zr.File[0])
	if err != nil {
		return nil, err
	}
	c.MimeType = string(mime)
	if c.MimeType != MimeASiCS && c.MimeType != MimeASiCE {
		return nil, fmt.Errorf("%w: mimetype %q", ErrContainer, c.MimeType)
	}
	seen := map[string]bool{}
	for _, f := range zr.File[1:] {
		if strings.HasSuffix(f.Name, "/") {
			continue // a directory entry
		}
		if err := checkName(f.Name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrContainer, err)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("%w: %q twice", ErrContainer, f.Name)
		}
		seen[f.Name] = true
		data, err := read(f)
		if err != nil {
			return nil, err
		}
		switch {
		case f.Name == CAdESEntry || f.Name == XAdESEntry:
			if c.Signature != nil {
				return nil, fmt.Errorf("%w: more than one signature", ErrContainer)
			}
			c.Signature, c.SignatureName = data, f.Name
		case strings.HasPrefix(f.Name, "META-INF/"):
			// manifests and other metadata: not signed content
		default:
			c.Documents = append(c.Documents, Document{Name: f.Name, Content: data})
		}
	}
	if c.Signature == nil {
		return nil, fmt.Errorf("%w: no %s or %s", ErrContainer, CAdESEntry, XAdESEntry)
	}
	if len(c.Documents) == 0 || (c.MimeType == MimeASiCS && len(c.Documents) != 1) {
		return nil, fmt.Errorf("%w: %d documents in an %s", ErrContainer, len(c.Documents), c.MimeType)
	}
	if c.MimeType == MimeASiCE && c.SignatureName == CAdESEntry {
		// ASiC-E with CAdES signs an ASiCManifest, which is not made here.
		return nil, fmt.Errorf("%w: ASiC-E with CAdES (an ASiCManifest) is not supported", ErrContainer)
	}
	return c, nil
}

func crc(s string) uint32 { return crc32.ChecksumIEEE([]byte(s)) }
