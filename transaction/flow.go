package transaction

import (
	"context"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// View is what the approval page shows for the transaction id before
// sign-in: the portal, the documents and the masked DNI/NIE. The id in
// the citizen's URL is a capability to see what is asked, not to learn
// who is asked: the certificate (whose subject is the citizen's full name
// and DNI/NIE) and the masked mobile number are left out; SessionView
// adds them for the signed-in citizen.
func (s *Service) View(ctx context.Context, id string) (*View, error) {
	return s.SessionView(ctx, id, "")
}

// SessionView is View for the citizen holding session: the whole view
// (certificate, code status) when session is the transaction's live
// sign-in, the public one of View otherwise, so a stale or forged cookie
// shows the page as before sign-in instead of failing. View.SignedIn
// tells which.
func (s *Service) SessionView(ctx context.Context, id, session string) (*View, error) {
	t, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if State(t.State) == StateDraft {
		// The portal has not sent the citizen yet: nothing to show.
		return nil, notFound()
	}
	v, err := s.view(ctx, t)
	if err != nil {
		return nil, err
	}
	if session != "" && s.checkSession(t, session) == nil {
		v.SignedIn = true
		return v, nil
	}
	v.Certificate, v.OTP = nil, nil
	return v, nil
}

// SessionDocument returns document index of transaction id, content
// included, to the citizen signed in to it (session) and to no one else:
// CodeSessionInvalid otherwise, as SendOTP and Approve refuse. A
// document sent as a digest only, or whose content was purged, is
// CodeInvalidRequest.
func (s *Service) SessionDocument(ctx context.Context, id, session string, index int) (*DocumentContent, error) {
	t, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if State(t.State) == StateDraft {
		return nil, notFound()
	}
	if err := s.checkSession(t, session); err != nil {
		return nil, err
	}
	docs, err := s.st.Documents(ctx, t.ID, true)
	if err != nil {
		return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	if index < 0 || index >= len(docs) || docs[index].Content == nil {
		return nil, invalid("document", "the transaction has no document %d with its content", index)
	}
	d := docs[index]
	return &DocumentContent{Name: d.Name, MediaType: d.MediaType, Content: d.Content}, nil
}

func (s *Service) view(ctx context.Context, t *store.Transaction) (*View, error) {
	p, err := s.opt.Portals.Get(ctx, t.PortalID)
	if err != nil {
		return nil, fail(CodeUnavailable, "the portal registry failed; retry", err)
	}
	docs, err := s.st.Documents(ctx, t.ID, false)
	if err != nil {
		return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	v := &View{ID: t.ID, PortalName: p.Name, CitizenMasked: maskID(t.CitizenID), State: State(t.State),
		ApprovalCode: policy.ShortCode(t.ApprovalDigest), ExpiresAt: t.ExpiresAt, Summary: Summary(t.Summary),
		ErrorCode: Code(t.ErrorCode), ErrorMessage: t.ErrorMessage, ErrorURL: withID(t.ErrorURL, t.ID)}
	for _, d := range toTransaction(t, docs).Documents {
		v.Documents = append(v.Documents, ViewDocument{Index: d.Index, Name: d.Name, MediaType: d.MediaType, Size: d.Size,
			Format: d.Format, ShortCode: policy.ShortCode(d.Digest), Status: d.Status})
	}
	if State(t.State).Final() {
		v.EndedAt = t.EndedAt
		v.ReturnURL = v.ErrorURL
		if State(t.State) == StateDone {
			v.ReturnURL = withID(t.OKURL, t.ID)
		}
	}
	if t.OTPSends > 0 && !State(t.State).Final() {
		if c, err := s.opt.Citizens.Citizen(ctx, t.CitizenID); err == nil {
			v.OTP = s.otpStatus(ctx, t, c.Mobile)
		}
	}
	v.Certificate = s.certificateView(ctx, t)
	return v, nil
}

func (s *Service) certificateView(ctx context.Context, t *store.Transaction) *CertificateView {
	if t.CertificateID != "" {
		if c, err := s.opt.Certificates.Certificate(ctx, t.CertificateID); err == nil && c.Cert != nil {
			return certView(c)
		}
	}
	if State(t.State).Final() {
		return nil
	}
	c, err := s.signingCertificate(ctx, t.CitizenID)
	switch {
	case err != nil:
		return nil
	case c == nil:
		return &CertificateView{WillIssue: true}
	case c.Cert != nil:
		return certView(c)
	}
	return nil
}

// certView names a certificate the way people read it: its common name
// (surnames, given name and DNI/NIE for citizens) and its issuer's.
func certView(c *ca.Certificate) *CertificateView {
	name := func(n pkix.Name) string {
		if n.CommonName != "" {
			return n.CommonName
		}
		return n.String()
	}
	return &CertificateView{Subject: name(c.Cert.Subject), Serial: c.Serial, Issuer: name(c.Cert.Issuer), NotAfter: c.NotAfter}
}

// otpStatus shows the tries left on the citizen's channel, which wrong
// codes of other transactions and the CSC API count down as well.
func (s *Service) otpStatus(ctx context.Context, t *store.Transaction, mobile string) *OTPStatus {
	left, err := s.attempt.Left(ctx, policy.OTPScope(t.CitizenID), s.now().UTC())
	if err != nil {
		// Only shown: the decision is taken on the code itself.
		s.log.WarnContext(ctx, "otp tries left unknown", "transaction", t.ID, "err", err)
		left = max(0, s.attempt.Rules().MaxFailures-t.OTPTries)
	}
	return &OTPStatus{SentTo: sms.Mask(mobile), ExpiresAt: t.OTPExpiresAt, TriesLeft: left,
		ResendsLeft: s.rules.ResendsLeft(t.OTPSends), ResendAt: t.OTPSentAt.Add(s.rules.ResendGap)}
}

// channelLocked is the refusal while the citizen's SMS-code channel is
// locked by wrong codes typed anywhere (this or another transaction, a
// CSC portal): the transaction itself waits and may go on afterwards.
func channelLocked(err error) error {
	if r, ok := policy.IsLocked(err); ok {
		return &Error{Code: CodeOTPChannelLocked, Message: r.Reason, Err: err}
	}
	return fail(CodeUnavailable, "the attempt counter failed; retry", err)
}

// Authenticate signs the citizen in with DNI/NIE and Cl@ve Permanente
// password. The DNI/NIE must be the transaction's. It returns a session
// token that the later steps require.
func (s *Service) Authenticate(ctx context.Context, id, citizenID, password string) (*Session, error) {
	nid, err := registry.NormalizeID("citizen_id", citizenID)
	if err != nil {
		return nil, invalid("citizen_id", "not a valid DNI or NIE")
	}
	for range maxRetries {
		t, err := s.load(ctx, id)
		if err != nil {
			return nil, err
		}
		switch State(t.State) {
		case StateCreated, StateAuthenticated, StateOTPSent:
		default:
			return nil, stateError(t)
		}
		// Checked before the password, so a mistyped DNI never counts as a
		// failure against someone else's credential.
		if nid != t.CitizenID {
			return nil, refuse(CodeCitizenMismatch, "this signature request is for another citizen")
		}
		if _, err := s.opt.Citizens.Authenticate(ctx, nid, password); err != nil {
			switch {
			case errors.Is(err, registry.ErrLocked):
				return nil, refuse(CodeCredentialLocked, "%s", err.Error())
			case errors.Is(err, registry.ErrThrottled):
				return nil, &Error{Code: CodeLoginThrottled, Message: "too many wrong passwords: try again later", Err: err}
			case errors.Is(err, registry.ErrBadCredentials), errors.Is(err, registry.ErrInvalid):
				return nil, refuse(CodeBadCredentials, "wrong DNI/NIE or password")
			}
			return nil, fail(CodeUnavailable, "the citizen registry failed; retry", err)
		}
		tok := make([]byte, 32)
		if _, err := rand.Read(tok); err != nil {
			return nil, fail(CodeUnavailable, "no randomness", err)
		}
		token := base64.RawURLEncoding.EncodeToString(tok)
		now := s.now().UTC()
		t.SessionHash, t.UpdatedAt = s.sessionHash(t.ID, token), now
		if State(t.State) == StateCreated {
			t.State, t.AuthenticatedAt = string(StateAuthenticated), now
		}
		if err := s.st.UpdateTransaction(ctx, t); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		s.log.InfoContext(ctx, "citizen authenticated", "transaction", t.ID)
		v, err := s.view(ctx, t)
		if err != nil {
			return nil, err
		}
		v.SignedIn = true
		return &Session{Token: token, View: v}, nil
	}
	return nil, fail(CodeUnavailable, "the transaction is busy; retry", nil)
}

// SendOTP sends the one-time password by SMS: the first one after
// sign-in, or a new one (see Resend) within the resend limits.
func (s *Service) SendOTP(ctx context.Context, id, session string) (*OTPStatus, error) {
	return s.send(ctx, id, session, false)
}

// Resend sends a new one-time password, voiding the previous one: at most
// OTPRules.MaxResends times, OTPRules.ResendGap apart. Wrong tries are not
// reset.
func (s *Service) Resend(ctx context.Context, id, session string) (*OTPStatus, error) {
	return s.send(ctx, id, session, true)
}

func (s *Service) send(ctx context.Context, id, session string, resend bool) (*OTPStatus, error) {
	for range maxRetries {
		t, err := s.load(ctx, id)
		if err != nil {
			return nil, err
		}
		switch State(t.State) {
		case StateAuthenticated, StateOTPSent:
		default:
			return nil, stateError(t)
		}
		if err := s.checkSession(t, session); err != nil {
			return nil, err
		}
		if resend && t.OTPSends == 0 {
			return nil, refuse(CodeOTPNotSent, "no code was sent yet")
		}
		now := s.now().UTC()
		// No SMS while wrong codes have locked the citizen's channel.
		if err := s.attempt.Check(ctx, policy.OTPScope(t.CitizenID), now); err != nil {
			return nil, channelLocked(err)
		}
		if err := s.rules.MaySend(t.OTPSends, t.OTPSentAt, now); err != nil {
			var r *policy.Refusal
			errors.As(err, &r)
			code := CodeResendLimit
			if r != nil && r.Rule == policy.RuleOTPResendTooSoon {
				code = CodeResendTooSoon
			}
			return nil, &Error{Code: code, Message: err.Error(), Err: err}
		}
		c, err := s.opt.Citizens.Citizen(ctx, t.CitizenID)
		if err != nil {
			return nil, fail(CodeUnavailable, "the citizen registry failed; retry", err)
		}
		p, err := s.opt.Portals.Get(ctx, t.PortalID)
		if err != nil {
			return nil, fail(CodeUnavailable, "the portal registry failed; retry", err)
		}
		docs, err := s.st.Documents(ctx, t.ID, false)
		if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		code, err := policy.NewOTP()
		if err != nil {
			return nil, fail(CodeUnavailable, "no randomness", err)
		}
		// The send is reserved in the store before the SMS goes, so that
		// two clicks cannot both pass the limits; a failed SMS gives the
		// reservation back.
		prev := *t
		t.State = string(StateOTPSent)
		t.OTPHash = s.otp.Hash(t.ID, t.ApprovalDigest, code)
		t.OTPExpiresAt, t.OTPSentAt, t.OTPSends, t.UpdatedAt = now.Add(s.rules.TTL), now, t.OTPSends+1, now
		if err := s.st.UpdateTransaction(ctx, t); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		text := policy.OTPMessage(p.Name, len(docs), policy.ShortCode(t.ApprovalDigest), code, s.rules.TTL)
		if err := s.opt.SMS.Send(ctx, c.Mobile, text); err != nil {
			s.m.sms.WithLabelValues("failed").Inc()
			s.unsend(ctx, t, &prev)
			s.log.WarnContext(ctx, "otp sms failed", "transaction", t.ID, "err", err)
			return nil, fail(CodeSMSFailed, "the text message with the code could not be sent; try again in a moment", err)
		}
		s.m.sms.WithLabelValues("sent").Inc()
		s.record(ctx, &audit.Record{Event: audit.OTPSent, Outcome: audit.Success, Actor: citizenActor(t.CitizenID), Citizen: t.CitizenID,
			Portal: t.PortalID, RequestID: t.ID, Details: map[string]string{"transaction": t.ID, "sends": strconv.Itoa(t.OTPSends)}})
		s.log.InfoContext(ctx, "otp sent", "transaction", t.ID, "to", sms.Mask(c.Mobile), "sends", t.OTPSends)
		return s.otpStatus(ctx, t, c.Mobile), nil
	}
	return nil, fail(CodeUnavailable, "the transaction is busy; retry", nil)
}

// unsend gives back a reserved send whose SMS failed, unless the
// transaction moved on meanwhile.
func (s *Service) unsend(ctx context.Context, t, prev *store.Transaction) {
	back := *prev
	back.Version = t.Version
	back.UpdatedAt = s.now().UTC()
	if err := s.st.UpdateTransaction(ctx, &back); err != nil {
		s.log.WarnContext(ctx, "otp send not given back", "transaction", t.ID, "err", err)
	}
}

// Approve checks the one-time password and, if it is right, records the
// approval and hands the transaction to the signing workers (see Start),
// without waiting for them: it returns the transaction approved, and
// signing goes on whatever becomes of ctx (a closed tab, a proxy
// timeout). Progress shows in View and Get; Wait waits for the end. A
// wrong code counts a try on the citizen's channel (policy.OTPScope); the
// one that locks the channel fails the transaction, and while it is
// locked no code of the citizen's is checked or sent, from any portal.
func (s *Service) Approve(ctx context.Context, id, session, otp string) (*View, error) {
	t, err := s.approve(ctx, id, session, otp)
	if err != nil {
		return nil, err
	}
	// A full queue leaves it approved and due: the resume scan offers it
	// again within a second, here or on another node.
	s.enqueue(t.ID, false)
	return s.view(ctx, t)
}

func (s *Service) approve(ctx context.Context, id, session, otp string) (*store.Transaction, error) {
	// A wrong code is counted once, even if the transaction's update is
	// retried after a conflict.
	var failure *policy.AttemptFailure
	for range maxRetries {
		t, err := s.load(ctx, id)
		if err != nil {
			return nil, err
		}
		switch State(t.State) {
		case StateOTPSent:
		case StateAuthenticated:
			return nil, refuse(CodeOTPNotSent, "ask for the code first")
		default:
			return nil, stateError(t)
		}
		if err := s.checkSession(t, session); err != nil {
			return nil, err
		}
		if !policy.WellFormedOTP(otp) {
			return nil, invalid("otp", "the code has %d digits", policy.OTPDigits)
		}
		now := s.now().UTC()
		if !now.Before(t.OTPExpiresAt) || len(t.OTPHash) == 0 {
			s.m.otp.WithLabelValues("expired").Inc()
			return nil, refuse(CodeOTPExpired, "the code has expired; ask for a new one")
		}
		if failure == nil {
			// The lock, the comparison and the count are one step on the
			// citizen's channel, so that guesses arriving at once through
			// any node and transaction take turns. Locked (here or by
			// wrong codes elsewhere), the code is not compared and this
			// transaction waits. A right code resets the count.
			f, err := s.attempt.Verify(ctx, policy.OTPScope(t.CitizenID), now, func() bool {
				return s.otp.Check(t.OTPHash, t.ID, t.ApprovalDigest, otp)
			})
			switch {
			case errors.Is(err, policy.ErrWrongCode):
				failure = &f
			case err != nil:
				if _, ok := policy.IsLocked(err); ok {
					s.m.otp.WithLabelValues("channel_locked").Inc()
				}
				return nil, channelLocked(err)
			}
		}
		if failure != nil {
			t.OTPTries++
			t.UpdatedAt = now
			if failure.Locked {
				err := s.finish(ctx, t, StateFailed, CodeOTPLocked, fmt.Sprintf(
					"a wrong code was entered %d times; the signature was not made and must be started again from the portal, after %s UTC",
					failure.Failures, failure.LockedUntil.UTC().Format("2006-01-02 15:04:05")))
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
				}
				s.m.otp.WithLabelValues("locked").Inc()
				s.record(ctx, &audit.Record{Event: audit.OTPLocked, Outcome: audit.Denied, Actor: citizenActor(t.CitizenID), Citizen: t.CitizenID,
					Portal: t.PortalID, RequestID: t.ID, Reason: "too many wrong codes", Details: map[string]string{"transaction": t.ID,
						"failures": strconv.Itoa(failure.Failures), "locked_until": failure.LockedUntil.UTC().Format(time.RFC3339)}})
				s.log.WarnContext(ctx, "otp locked", "transaction", t.ID, "until", failure.LockedUntil)
				return nil, refuse(CodeOTPLocked, "%s", t.ErrorMessage)
			}
			if err := s.st.UpdateTransaction(ctx, t); errors.Is(err, store.ErrConflict) {
				continue
			} else if err != nil {
				return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
			}
			s.m.otp.WithLabelValues("wrong").Inc()
			s.record(ctx, &audit.Record{Event: audit.OTPFailed, Outcome: audit.Failure, Actor: citizenActor(t.CitizenID), Citizen: t.CitizenID,
				Portal: t.PortalID, RequestID: t.ID, Reason: "wrong code",
				Details: map[string]string{"transaction": t.ID, "tries": strconv.Itoa(t.OTPTries), "failures": strconv.Itoa(failure.Failures)}})
			return nil, refuse(CodeOTPInvalid, "wrong code; %d %s left", failure.Left, plural(failure.Left, "try", "tries"))
		}
		// Single use: the hash goes in the same update that approves. From
		// here ExpiresAt is when signing is due (now: approved, for any
		// node's worker), then the signing lease's end (see lease).
		t.State, t.OTPHash, t.ApprovedAt, t.UpdatedAt = string(StateApproved), nil, now, now
		t.ExpiresAt = now
		if err := s.st.UpdateTransaction(ctx, t); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		s.m.otp.WithLabelValues("ok").Inc()
		s.record(ctx, &audit.Record{Event: audit.OTPChecked, Outcome: audit.Success, Actor: citizenActor(t.CitizenID), Citizen: t.CitizenID,
			Portal: t.PortalID, RequestID: t.ID, Details: map[string]string{"transaction": t.ID}})
		s.log.InfoContext(ctx, "transaction approved", "transaction", t.ID)
		return t, nil
	}
	return nil, fail(CodeUnavailable, "the transaction is busy; retry", nil)
}

// Reject ends the transaction at the citizen's request, signed in: the
// link alone is not the citizen (it travels in e-mails, browser
// histories and referrers), and whoever else holds it must not be able
// to end a request the citizen still means to sign. A portal that wants
// the request gone cancels it through its API.
func (s *Service) Reject(ctx context.Context, id, session string) (*View, error) {
	for range maxRetries {
		t, err := s.load(ctx, id)
		if err != nil {
			return nil, err
		}
		switch State(t.State) {
		case StateCreated, StateAuthenticated, StateOTPSent:
			if err := s.checkSession(t, session); err != nil {
				return nil, err
			}
		default:
			return nil, stateError(t)
		}
		err = s.finish(ctx, t, StateRejected, CodeCancelledByCitizen, "the citizen rejected the signature")
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		return s.view(ctx, t)
	}
	return nil, fail(CodeUnavailable, "the transaction is busy; retry", nil)
}

// withID adds transaction_id to a portal URL, keeping its query.
func withID(u, id string) string {
	p, err := url.Parse(u)
	if err != nil || u == "" {
		return ""
	}
	q := p.Query()
	q.Set("transaction_id", id)
	p.RawQuery = q.Encode()
	return p.String()
}

// maskID shows only the last four characters of a DNI/NIE.
func maskID(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return "****" + id[len(id)-4:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
