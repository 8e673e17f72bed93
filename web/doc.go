// Package web is the citizen approval page, server-rendered with
// html/template from embedded templates and CSS: no script, font or image
// is fetched from anywhere else. A portal sends the citizen to
// /sign/{id}; the page shows the portal, every document (name, size,
// digest short code), the certificate that will sign and the approval
// short code the SMS also carries. The citizen signs in with DNI/NIE and
// Cl@ve Permanente password, receives the SMS code, approves or rejects,
// and is sent (303) to the portal's OK or error URL with the transaction
// id: only ever the URL the portal registered for the transaction.
//
// The state lives in the transaction core (package transaction); the
// page keeps only two cookies, both HttpOnly, SameSite=Strict, Path=/ and,
// when Secure is set, Secure with the __Host- prefix: a random CSRF secret
// per browser, and per transaction the session token the core returns at
// sign-in. Every form carries an HMAC of the transaction id and session
// under the CSRF secret, compared in constant time, and a POST must come
// from the service's own origin (Origin header). Texts are in Spanish and
// English, chosen by Accept-Language or the switch in the header.
package web
