// Package limit bounds what an unauthenticated or cheap request can make
// firmad spend: Gate is a weighted semaphore with a bounded wait (bytes
// of request bodies in flight, argon2id memory), Clients a per-client
// token bucket and Concurrent a per-client count of requests in flight.
// The maps keyed by client are bounded, so a flood from many addresses
// cannot grow them without end. Refusals are *errs.Error (TooMany or
// Unavailable, with RetryAfter), which each surface turns into its own
// error form.
package limit
