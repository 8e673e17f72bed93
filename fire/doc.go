// Package fire is the FIRe side of firma's signing transactions: what a
// portal written against FIRe (the Spanish government's integration
// component, with Java, PHP and .NET client libraries) needs beyond
// firma's own transactions, so that it can re-point its client at firma
// and change nothing else.
//
// A FIRe transaction is a firma transaction (package transaction): the
// same approval page /sign/{id}, policy, audit records and limits. This
// package keeps only what FIRe adds (store.FireStore): the application
// (appid and client-certificate digests) behind a portal, the redirect
// URLs exactly as given, a batch's document ids, and which results were
// handed out, since FIRe hands each out once. It maps FIRe's vocabulary
// (cop, format, algorithm, upgrade, properties) onto firma's in one table
// each (mapping.go), refusing by name every value firma cannot honour.
//
// It serves no HTTP: api/rest/firehttp parses the FIRe wire form and
// writes FIRe's answers and error codes.
//
// # Redirects
//
// FIRe sends the citizen back to redirectOkUrl or redirectErrorUrl with
// nothing appended, where firma's approval page appends the transaction
// id to a portal's URLs. A FIRe transaction is therefore created with
// firma's own return URLs (Options.ReturnBase + "/ok" and "/error"),
// and ReturnURL answers the verbatim URL for them: one more 302 for the
// browser, no change to the page or to the transaction store.
package fire
