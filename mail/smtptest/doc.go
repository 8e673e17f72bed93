// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp)
// on the loopback interface for tests of code that sends e-mail: STARTTLS
// or implicit TLS with a self-signed certificate made per server, AUTH
// PLAIN with a configured user, scripted refusals of recipients, and every
// accepted message kept for the test to read.
package smtptest
