// Package softhsmtest makes throwaway SoftHSM2 tokens for tests.
//
// Every HSM test in this repository gets its token from here: the token lives
// in a temporary directory with its own SOFTHSM2_CONF, so no test ever touches
// a token it did not create, and it is deleted when the test ends.
//
// SoftHSM2 reads SOFTHSM2_CONF once, when the library is first initialised in
// a process, so all tokens of one test binary share one token directory and
// configuration file; each token has its own label and PINs.
package softhsmtest
