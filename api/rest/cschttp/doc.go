// Package cschttp is the Cloud Signature Consortium API v2 over HTTP,
// /csc/v2/, one surface of the REST layer under api/rest: it authenticates
// the calling portal (bearer API key or mTLS client certificate), decodes
// the CSC request bodies and calls csc.Service, whose refusals (*errs.Error with
// CSC codes) it writes, status by kind from one table, in the CSC error form {"error", "error_description"}, not as
// problem documents, since CSC clients branch on those:
//
//	GET|POST /csc/v2/info
//	POST     /csc/v2/credentials/list
//	POST     /csc/v2/credentials/info
//	POST     /csc/v2/credentials/sendOTP
//	POST     /csc/v2/credentials/authorize
//	POST     /csc/v2/signatures/signHash
package cschttp
