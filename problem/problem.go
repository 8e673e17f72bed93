package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// TypeBase prefixes the type URI of every problem document; the code
// follows it.
const TypeBase = "https://firma.cloud/problems/"

// Details is the one problem document every firmad REST surface answers
// errors with: RFC 9457's members and the stable code (as clients branch
// on it) and, when one request field is at fault, its name. A surface that
// adds an extension member (the portal API's transaction_id) embeds it or
// keeps these members in this order in a struct of its own.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
}

// New is the problem document for status and code: its type is TypeBase
// and the code, its title the status text.
func New(status int, code, detail string) Details {
	return Details{Type: TypeBase + code, Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
}

// Write sends doc, a problem document, with the given HTTP status. An
// error reply is about one request, so it is marked no-store: a cache in
// between must not serve it to another.
func Write(w http.ResponseWriter, status int, doc any) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The status line is out; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(doc)
}

// Send writes New(status, code, detail).
func Send(w http.ResponseWriter, status int, code, detail string) {
	Write(w, status, New(status, code, detail))
}
