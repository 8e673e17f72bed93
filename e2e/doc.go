// Package e2e holds the end-to-end tests: a real headless Chromium
// (Debian's chromium, driven with chromedp) walks the citizen approval
// page of firmad's HTTP handlers, run in process on loopback over a fresh
// SoftHSM2 token, while a portal (an httptest server with its own OK and
// error URLs) creates the transaction through the portal API and collects
// the results, which openssl verifies. Package stack assembles the parts.
package e2e
