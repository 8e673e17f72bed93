// Package oauth is the OAuth 2.0 authorisation server of the CSC API
// (CSC v2.2 section 8): the code flow (RFC 6749) with PKCE S256 required
// (RFC 7636), pushed authorisation requests (RFC 9126) and rich
// authorisation requests (RFC 9396) of the CSC "credential" type, and the
// plain scope=credential form. Its transport is api/rest/cschttp
// (/csc/v2/oauth2/...); the citizen's ceremony is firma's own page in web
// (/sign/consent/{id}).
//
// Clients are the registered portals: client_id is the portal ID, the
// redirect URI must be one the portal registered, exactly, and a client
// authenticates at the pushed-request and token endpoints with its API
// key as client secret (HTTP Basic or client_secret_post; compared as
// SHA-256 digests in constant time) or its mTLS certificate.
//
// The ceremony: the citizen signs in on firma's page with DNI/NIE and
// permanent password (the registry's rules and lockouts), must own the
// credential and be allowed to sign, sees the portal, every document's
// label and digest and the certificate, and approves with the SMS code
// (the one attempt policy: wrong codes count per citizen across every
// client and the approval page) or rejects. Approval issues a code bound
// to the client, redirect URI and PKCE challenge, single use, short-lived.
//
// The access token of credential scope is a SAD of package csc: bound to
// client, citizen, credential and the exact digests, each signed once,
// short-lived, consumed through the signing service. The code, the
// session and the token are kept only as hashes.
package oauth
