// Package web is the citizen approval page, server-rendered with
// html/template from embedded templates and CSS: no script, font or image
// is fetched from anywhere else. A portal sends the citizen to
// /sign/{id}; the page shows the portal, every document (name, size,
// digest short code), the masked DNI/NIE and the approval short code the
// SMS also carries. The link is not the citizen (it travels in e-mails,
// histories, referrers), so before sign-in the page names no one (no
// name, DNI/NIE or certificate) and offers no rejection. The citizen signs
// in with DNI/NIE and Cl@ve Permanente password, then sees the
// certificate that will sign, receives the SMS code, approves or rejects,
// and is sent (303) to the portal's OK or error URL with the transaction
// id: only ever the URL the portal registered for the transaction.
//
// Wrong passwords on either page are limited by the registry per DNI/NIE
// and per client (the peer address, passed with registry.WithClient):
// growing delays, then a lock that lifts by itself; the page answers "try
// again later" meanwhile, the same for registered and unregistered
// DNIs/NIEs. The /me sign-in cookie is stateless (HMAC), so signing out
// records the time in the store (Options.Sessions) and every session of
// the citizen issued before it is refused on every node.
//
// The state lives in the transaction core (package transaction); the
// page keeps only two cookies, both HttpOnly, SameSite=Strict, Path=/ and,
// when Secure is set, Secure with the __Host- prefix: a random CSRF secret
// per browser, and per transaction the session token the core returns at
// sign-in. Every form carries an HMAC of the transaction id and session
// under the CSRF secret, compared in constant time, and a POST must come
// from the service's own origin (Origin header). Texts are in Spanish and
// English, chosen by Accept-Language or the switch in the header.
//
// With Options.Consents, /sign/consent/{id} is the CSC API's consent page
// (consent.go, over csc/oauth): the same look, cookies, form tokens,
// origin check and sign-in limits, for a CSC client's OAuth 2.0 request:
// the portal, each document's label and digest, the certificate once
// signed in, the SMS code, approve or reject, and back to the client's
// registered redirect URI.
package web
