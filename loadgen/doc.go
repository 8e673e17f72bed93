// Package loadgen drives the whole signing flow of one or several firmad
// nodes over their public interfaces, the way portals and citizens do, and
// measures it: a portal creates a transaction (REST, API key), the citizen
// signs in on the approval page, the SMS code is read from the sandbox
// outbox (operator REST), the citizen approves, and the portal collects the
// result. Steps of one transaction go to different nodes, so the run also
// shows that nodes share their state.
//
// Every collected signature is verified against the certificate returned
// with it, and checked against every other signature of the run, so a run
// that reports no errors has lost and duplicated nothing.
//
// It only talks to loopback addresses: it is a benchmark, not a way to
// load someone else's service.
package loadgen
