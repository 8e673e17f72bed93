// Package firehttp is the FIRe-compatible endpoint: the one servlet path
// (default /fire-signature/fireService) that FIRe's Java, PHP and .NET
// client libraries post to. It only translates: it parses the clients'
// form bodies (values not percent-encoded, URL-safe base64 with padding,
// Java .properties blobs, the .NET client's leading & and repeated op),
// authenticates the application by its appid and TLS client certificate,
// calls package fire, and writes FIRe's answers and its {"c","m"} error
// bodies through one table (errors.go) from firma's error kinds and
// codes to FIRe's numeric codes and HTTP statuses.
package firehttp
