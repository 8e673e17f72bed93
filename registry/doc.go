// Package registry is the Cl@ve citizen registry: who is registered, at
// which level (basic or advanced), by which method, and the Cl@ve
// Permanente password each citizen sets with a one-time activation code.
//
// Each registration method is a flow here: in person (a registrar), with an
// electronic certificate or DNIe (TLS client certificate or signed
// challenge, then a code by SMS), by video call (a video agent, inside
// service hours) and by invitation letter (a CSV posted to the fiscal
// address, then redeemed). Which level a method grants, who may run it and
// who may sign are decisions of package policy; this package applies them.
// A citizen who loses the advanced level or is removed is reported to a
// Revoker (the CA) so that their signing certificate is revoked.
package registry
