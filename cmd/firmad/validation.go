package main

import "github.com/firma-cloud/firma/signer/ltv"

// validation gathers the B-LT validation material of signatures: the
// built-in CA answers for its own certificates in process, outside
// responders and CRLs are asked over HTTP with ltv's timeouts.
func (a *app) validation() *ltv.Gatherer {
	if a.ca != nil {
		return a.ca.Gatherer()
	}
	return &ltv.Gatherer{}
}
