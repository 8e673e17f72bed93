package openapi

import (
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strings"
)

// view is the document as the page shows it: operations by tag, then the
// schemas.
type view struct {
	Title, Version, Description string
	Tags                        []tagView
	Webhooks                    []opView
	Schemas                     []schemaView
}

type tagView struct {
	Name, Description string
	Ops               []opView
}

type opView struct {
	Method, Path, ID, Summary, Description string
	Security                               []string
	Params                                 []paramView
	Body                                   []contentView
	Responses                              []responseView
}

type paramView struct{ Name, In, Type, Description string }

type contentView struct{ MediaType, Schema string }

type responseView struct {
	Status, Description string
	Content             []contentView
}

type schemaView struct {
	Name, Description string
	Props             []paramView
	Required          []string
}

func newView(doc map[string]any) view {
	info := m(doc["info"])
	v := view{Title: s(info["title"]), Version: s(info["version"]), Description: s(info["description"])}
	byTag := map[string]*tagView{}
	for _, t := range l(doc["tags"]) {
		tv := &tagView{Name: s(m(t)["name"]), Description: s(m(t)["description"])}
		byTag[tv.Name] = tv
		v.Tags = append(v.Tags, *tv)
	}
	paths := m(doc["paths"])
	for _, path := range sortedKeys(paths) {
		item := m(paths[path])
		for _, method := range []string{"get", "put", "post", "delete", "patch"} {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			tag := ""
			if tags := l(op["tags"]); len(tags) > 0 {
				tag = s(tags[0])
			}
			if byTag[tag] == nil {
				byTag[tag] = &tagView{Name: tag}
				v.Tags = append(v.Tags, tagView{Name: tag})
			}
			byTag[tag].Ops = append(byTag[tag].Ops, newOp(method, path, op, item))
		}
	}
	for i := range v.Tags {
		v.Tags[i].Ops = byTag[v.Tags[i].Name].Ops
	}
	hooks := m(doc["webhooks"])
	for _, name := range sortedKeys(hooks) {
		item := m(hooks[name])
		if op, ok := item["post"].(map[string]any); ok {
			v.Webhooks = append(v.Webhooks, newOp("post", name, op, item))
		}
	}
	schemas := m(m(doc["components"])["schemas"])
	for _, name := range sortedKeys(schemas) {
		sc := m(schemas[name])
		sv := schemaView{Name: name, Description: s(sc["description"])}
		props := m(sc["properties"])
		for _, p := range sortedKeys(props) {
			sv.Props = append(sv.Props, paramView{Name: p, Type: typeOf(props[p]), Description: s(m(props[p])["description"])})
		}
		for _, r := range l(sc["required"]) {
			sv.Required = append(sv.Required, s(r))
		}
		v.Schemas = append(v.Schemas, sv)
	}
	return v
}

func newOp(method, path string, op, item map[string]any) opView {
	o := opView{Method: strings.ToUpper(method), Path: path, ID: s(op["operationId"]), Summary: s(op["summary"]), Description: s(op["description"])}
	for _, sec := range l(op["security"]) {
		for _, name := range sortedKeys(m(sec)) {
			o.Security = append(o.Security, name)
		}
	}
	params := append(l(item["parameters"]), l(op["parameters"])...)
	for _, p := range params {
		pm := m(p)
		if r := s(pm["$ref"]); r != "" {
			o.Params = append(o.Params, paramView{Name: refName(r), In: "see components"})
			continue
		}
		o.Params = append(o.Params, paramView{Name: s(pm["name"]), In: s(pm["in"]), Type: typeOf(pm["schema"]), Description: s(pm["description"])})
	}
	o.Body = contents(m(m(op["requestBody"])["content"]))
	resps := m(op["responses"])
	for _, st := range sortedKeys(resps) {
		r := m(resps[st])
		o.Responses = append(o.Responses, responseView{Status: st, Description: s(r["description"]), Content: contents(m(r["content"]))})
	}
	return o
}

func contents(c map[string]any) []contentView {
	var out []contentView
	for _, mt := range sortedKeys(c) {
		out = append(out, contentView{MediaType: mt, Schema: typeOf(m(c[mt])["schema"])})
	}
	return out
}

// typeOf is a schema in a few words: its $ref's name, its type, an
// array's items.
func typeOf(v any) string {
	sc := m(v)
	if sc == nil {
		return ""
	}
	if r := s(sc["$ref"]); r != "" {
		return refName(r)
	}
	if e := l(sc["enum"]); len(e) > 0 {
		names := make([]string, 0, len(e))
		for _, x := range e {
			names = append(names, fmt.Sprint(x))
		}
		return "one of " + strings.Join(names, ", ")
	}
	t := sc["type"]
	switch t := t.(type) {
	case []any:
		var parts []string
		for _, x := range t {
			parts = append(parts, s(x))
		}
		return strings.Join(parts, " or ")
	case string:
		if t == "array" {
			return "array of " + typeOf(sc["items"])
		}
		if f := s(sc["format"]); f != "" {
			return t + " (" + f + ")"
		}
		if e := s(sc["contentEncoding"]); e != "" {
			return t + " (" + e + ")"
		}
		return t
	}
	if sc["allOf"] != nil || sc["oneOf"] != nil {
		b, _ := json.Marshal(sc)
		return string(b)
	}
	return "any"
}

// basicTypes are JSON Schema's own type names.
var basicTypes = []string{"string", "integer", "number", "boolean", "object", "array", "null", "any"}

func refName(r string) string { return r[strings.LastIndexByte(r, '/')+1:] }

func m(v any) map[string]any { x, _ := v.(map[string]any); return x }
func l(v any) []any          { x, _ := v.([]any); return x }
func s(v any) string         { x, _ := v.(string); return x }

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"anchor": func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
				return r
			}
			return '-'
		}, s)
	},
	// schemaName tells a component's name from a type in words.
	"schemaName": func(t string) bool { return !strings.Contains(t, " ") && !slices.Contains(basicTypes, t) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:0 auto;padding:1rem 1.5rem;color:#1b1b1b}
h1,h2,h3{line-height:1.2}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
.op{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;margin:.8rem 0}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:monospace}
.GET{color:#0b6e2e}.POST{color:#0b4fa0}.PUT{color:#8a5a00}.DELETE{color:#a01010}
code,.p{font-family:ui-monospace,monospace;font-size:.92em}
.d{white-space:pre-wrap;margin:.3rem 0}
table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #e3e3e3;padding:.15rem .5rem;text-align:left;vertical-align:top}
nav ul{columns:2}small{color:#555}
</style></head><body>
<h1>{{.Title}} API reference <small>version {{.Version}}, OpenAPI 3.1: <a href="/openapi.json">/openapi.json</a></small></h1>
<div class="d">{{.Description}}</div>
<nav><h2>Contents</h2><ul>
{{range .Tags}}<li><a href="#tag-{{anchor .Name}}">{{.Name}}</a>: {{.Description}}</li>{{end}}
<li><a href="#webhooks">callbacks</a></li><li><a href="#schemas">schemas</a></li></ul></nav>
{{range .Tags}}<h2 id="tag-{{anchor .Name}}">{{.Name}}</h2><p>{{.Description}}</p>
{{range .Ops}}{{template "op" .}}{{end}}{{end}}
<h2 id="webhooks">Callbacks</h2>
{{range .Webhooks}}{{template "op" .}}{{end}}
<h2 id="schemas">Schemas</h2>
{{range .Schemas}}<div class="op" id="schema-{{anchor .Name}}"><h3><code>{{.Name}}</code></h3>
{{with .Description}}<div class="d">{{.}}</div>{{end}}
{{if .Props}}<table><tr><th>property</th><th>type</th><th>about</th></tr>
{{range .Props}}<tr><td class="p">{{.Name}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{with .Required}}<p>Required: {{range $i, $r := .}}{{if $i}}, {{end}}<code>{{$r}}</code>{{end}}</p>{{end}}{{end}}
</div>{{end}}
</body></html>
{{define "op"}}<div class="op" id="op-{{anchor .ID}}"><div><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code> <small>{{.ID}}</small></div>
<div><b>{{.Summary}}</b></div>{{with .Description}}<div class="d">{{.}}</div>{{end}}
{{with .Security}}<p>Authentication: {{range $i, $s := .}}{{if $i}} or {{end}}<code>{{$s}}</code>{{end}}</p>{{end}}
{{with .Params}}<table><tr><th>parameter</th><th>in</th><th>type</th><th>about</th></tr>{{range .}}<tr><td class="p">{{.Name}}</td><td>{{.In}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{with .Body}}<p>Request body: {{range $i, $c := .}}{{if $i}}; {{end}}<code>{{$c.MediaType}}</code>{{with $c.Schema}} {{template "type" .}}{{end}}{{end}}</p>{{end}}
<table><tr><th>status</th><th>answer</th></tr>{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}{{range .Content}}<br><code>{{.MediaType}}</code>{{with .Schema}} {{template "type" .}}{{end}}{{end}}</td></tr>{{end}}</table>
</div>{{end}}
{{define "type"}}{{if schemaName .}}<a href="#schema-{{anchor .}}">{{.}}</a>{{else}}{{.}}{{end}}{{end}}`))
