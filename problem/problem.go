package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Details is the problem document with RFC 9457's members only; callers
// with extension members embed it or use a struct of their own.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
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

// Basic sends an "about:blank" problem: title and detail for people, the
// status for programs.
func Basic(w http.ResponseWriter, status int, title, detail string) {
	Write(w, status, Details{Type: "about:blank", Title: title, Status: status, Detail: detail})
}
