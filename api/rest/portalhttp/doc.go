// Package portalhttp is the portal REST API, /api/v1, one surface of the
// REST layer under api/rest: JSON over HTTP onto transaction.Service, which
// it calls and whose refusals (*transaction.Error) it writes as problem
// documents. The gRPC face of the same operations is package api.
//
// A portal authenticates with its API key (header X-API-Key, or
// Authorization: Bearer) or with the mTLS client certificate registered
// for it (firmactl portals create). The operations carry the names of the
// government's FIRe component:
//
//	POST /api/v1/sign                               sign: one document ("document")
//	POST /api/v1/transactions                       createBatch + addDocumentToBatch + signBatch in one call ("documents")
//	POST /api/v1/batches                            createBatch: an empty batch (state draft)
//	POST /api/v1/batches/{id}/documents             addDocumentToBatch
//	POST /api/v1/batches/{id}/sign                  signBatch: returns redirect_url
//	GET  /api/v1/transactions/{id}                  recoverBatchState
//	GET  /api/v1/transactions/{id}/result           recoverBatchResult: signatures, certificate chain, timestamps
//	GET  /api/v1/transactions/{id}/documents/{n}    recoverBatchSign (Accept: application/octet-stream for the bare file)
//	POST /api/v1/transactions/{id}/cancel           cancel before the citizen approves
//	POST /api/v1/signatures/upgrade                 raise a CAdES (detached, or attached without digest), an XAdES or a signed PDF to B-T, B-LT or B-LTA
//	GET  /api/v1/transactions?state=&after=&limit=  the portal's transactions
//
// Transactions are addressed by application id (the authenticated portal;
// app_id, if sent, must match), subject id (the citizen's DNI/NIE; query
// parameter subject_id, checked if given) and transaction id. Another
// portal's transaction answers 404 exactly like a missing one. A document
// is {name, media_type, content | digest + hash, format}: raw, cades or
// pades (default by media type: PDF -> pades, else cades; pades needs the
// content). A document may also carry operation (sign, the default;
// cosign or countersign with the existing CAdES in signature, or cosign
// of a signed PDF sent as content), policy (omitted: the portal's
// default; none; FirmaAGE; or a configured policy's name) and attached
// (CAdES with the content inside). Creation answers redirect_url, /sign/{id} on the public URL:
// send the citizen there; they come back to ok_url or error_url (exact
// entries of the portal's allow-list) with ?transaction_id=.
//
// Errors are application/problem+json with "code" (e.g.
// weak_registration, bad_redirect_url, duplicate_document, otp_locked),
// "detail" for people and, for a bad field, "field".
package portalhttp
