package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/firma-cloud/firma/errs"
)

// Codes of the refusals DecodeJSON finds.
const (
	CodeInvalidRequest = "invalid_request"
	CodeTooLarge       = "request_too_large"
)

// DecodeJSON reads r's body, at most maxBody bytes, as exactly one JSON
// value into v, refusing members v does not have. A Content-Type other
// than application/json is refused (none is taken as JSON). The errors are
// *errs.Error: Invalid with field "content-type" or "body", or TooLarge.
// They describe the problem without echoing the input.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, maxBody int64) error {
	if !IsJSON(r.Header.Get("Content-Type")) {
		return errs.InvalidField(CodeInvalidRequest, "content-type", "send application/json")
	}
	if r.ContentLength > maxBody {
		// Refused before reading a byte of it.
		return errs.Newf(errs.TooLarge, CodeTooLarge, "request body over %d bytes", maxBody)
	}
	body, err := ReadBody(w, r, maxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.Newf(errs.TooLarge, CodeTooLarge, "request body over %d bytes", mbe.Limit)
		}
		return errs.InvalidField(CodeInvalidRequest, "body", "cannot be read")
	}
	// A bytes.Reader, not a string copy: the body may be hundreds of MiB.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errs.InvalidField(CodeInvalidRequest, "body", "not valid JSON for this operation: %s", jsonProblem(err, body, v))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errs.InvalidField(CodeInvalidRequest, "body", "one JSON object expected")
	}
	return nil
}

// ReadBody reads r's body, at most maxBody bytes (an *http.MaxBytesError
// beyond), into one buffer of the declared length: io.ReadAll's doublings
// would hold up to twice a large body while reading it.
func ReadBody(w http.ResponseWriter, r *http.Request, maxBody int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, maxBody)
	if r.ContentLength < 0 || r.ContentLength > maxBody {
		return io.ReadAll(rd)
	}
	// One byte more than declared: the server ends the body at its
	// declared length, so a full buffer cannot happen, and a short one is
	// the whole body.
	b := make([]byte, r.ContentLength+1)
	n, err := io.ReadFull(rd, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:n], err
}

// IsJSON reports whether a Content-Type header value is application/json
// (parameters such as charset allowed); none at all is taken as JSON.
// It is parsed, not prefix-matched, so application/jsonp or
// application/json-seq are not JSON.
func IsJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error, body []byte, v any) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends too early"
	}
	// encoding/json gives an unknown member no error type of its own, so
	// it is looked for here rather than read from the message.
	if name, ok := unknownMember(body, reflect.TypeOf(v)); ok {
		return fmt.Sprintf("unknown field %q", name)
	}
	return "malformed"
}

// unknownMember finds the first object member, at any depth, that type t
// has no field for, matching names as encoding/json does.
func unknownMember(data []byte, t reflect.Type) (string, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "", false
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return "", false
		}
		for _, it := range items {
			if name, ok := unknownMember(it, t.Elem()); ok {
				return name, true
			}
		}
	case reflect.Struct:
		members, ok := objectMembers(data)
		if !ok {
			return "", false
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if f.Anonymous && name == "" {
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				for j := 0; j < ft.NumField(); j++ {
					g := ft.Field(j)
					n, _, _ := strings.Cut(g.Tag.Get("json"), ",")
					if n == "" {
						n = g.Name
					}
					fields[strings.ToLower(n)] = g.Type
				}
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[strings.ToLower(name)] = f.Type
		}
		for _, m := range members {
			ft, ok := fields[strings.ToLower(m.name)]
			if !ok {
				return m.name, true
			}
			if name, ok := unknownMember(m.value, ft); ok {
				return name, true
			}
		}
	}
	return "", false
}

type member struct {
	name  string
	value json.RawMessage
}

// objectMembers is a JSON object's members in document order.
func objectMembers(data []byte) ([]member, bool) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out, true // a later syntax error; the members so far stand
		}
		out = append(out, member{name, v})
	}
	return out, true
}
