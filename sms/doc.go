// Package sms sends text messages to citizens' mobiles: registration codes
// now, signature one-time passwords later.
//
// Gateway is the one method every backend implements. Outbox keeps messages
// in the store instead of sending them, for the sandbox and for tests: the
// operator (or an integrator) reads them with `firmactl sms outbox`. A real
// operator gateway (HTTP) is another file implementing the same interface.
//
// Message texts carry secrets (codes), so no backend ever logs them.
package sms
