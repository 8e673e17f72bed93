// Package mail sends plain-text e-mail to citizens: for now the notices
// that a signature was made with their key (audit.NotifySignatures).
//
// Gateway is the one method every backend implements, and Check is the
// validation every backend applies first, so bad input is refused the
// same way everywhere. Outbox keeps messages in the store instead of
// sending them, for the sandbox and for tests (operators read them with
// `firmactl mail outbox`); SMTP hands them to a mail relay, over STARTTLS
// or implicit TLS (plaintext only to a relay on the loopback interface),
// authenticating with a password that is never logged.
//
// Addresses are personal data: logs show them masked (Mask), and errors
// never carry them, because the notifier's errors reach the logs.
package mail
