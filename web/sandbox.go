package web

import (
	"html/template"
	"net/http"

	"github.com/firma-cloud/firma/api/rest"
)

// SandboxReturnPath is a portal's OK and error page in the sandbox: the
// README's examples and the example clients send citizens back to it, so
// that a newcomer trying firma lands on a page that says what happened
// instead of a browser error for a portal that does not exist.
const SandboxReturnPath = "/sandbox/return"

var sandboxTmpl = template.Must(template.New("sandbox").Parse(`<!doctype html>
<html lang="es"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .OK}}Firma completada · Signature done{{else}}Firma no realizada · Not signed{{end}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}h1{font-size:1.4rem}</style>
</head><body>
{{if .OK}}<h1 id="result" data-result="ok">Firma completada</h1>
<p>El portal de pruebas ha recibido su firma.</p><p lang="en">Signature done: the sandbox portal has received it.</p>
{{else}}<h1 id="result" data-result="error">Firma no realizada</h1>
<p>No se ha firmado nada.</p><p lang="en">Nothing was signed.</p>{{end}}
{{with .ID}}<p>Transacción · Transaction: <code id="transaction">{{.}}</code></p>{{end}}
<p><small>Página del entorno de pruebas de firma (sandbox) · firma sandbox page</small></p>
</body></html>
`))

// RegisterSandbox serves the sandbox's return page on mux: result=ok or
// anything else, and the transaction_id the approval page appends.
func RegisterSandbox(mux rest.Router) {
	mux.HandleFunc("GET "+SandboxReturnPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		sandboxTmpl.Execute(w, struct {
			OK bool
			ID string
		}{q.Get("result") == "ok", q.Get("transaction_id")})
	})
}
