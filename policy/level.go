package policy

import (
	"errors"
	"fmt"
	"time"
)

// Level is a Cl@ve registration level.
type Level string

// Registration levels.
const (
	Basic    Level = "basic"
	Advanced Level = "advanced"
)

// Method is a way of registering in Cl@ve.
type Method string

// Registration methods.
const (
	InPerson              Method = "in_person"
	ElectronicCertificate Method = "electronic_certificate"
	VideoCall             Method = "video_call"
	InvitationLetter      Method = "invitation_letter"
)

// Methods lists every registration method.
var Methods = []Method{InPerson, ElectronicCertificate, VideoCall, InvitationLetter}

// Role is a staff role.
type Role string

// Staff roles that take part in registration.
const (
	Registrar  Role = "registrar"
	VideoAgent Role = "video_agent"
	// Administrator is a service operator: every staff act is open to it,
	// so that firmactl can run the registry without staff accounts.
	Administrator Role = "administrator"
)

// ParseRole parses a staff role name.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case Registrar, VideoAgent, Administrator:
		return Role(s), nil
	}
	return "", fmt.Errorf("unknown staff role %q (want registrar, video_agent or administrator)", s)
}

// ErrRefused is wrapped by every *Refusal, for errors.Is.
var ErrRefused = errors.New("refused by policy")

// Refusal is a policy decision against a request. Reason is written for the
// person refused and says what they can do about it.
type Refusal struct {
	Rule   string // short machine name of the rule, e.g. "advanced_level_required"
	Reason string
	// Until is when a temporary refusal (a lockout) ends; zero for the
	// others. Transports may turn it into Retry-After.
	Until time.Time
}

func (r *Refusal) Error() string { return r.Reason }

// Unwrap makes errors.Is(err, ErrRefused) hold.
func (r *Refusal) Unwrap() error { return ErrRefused }

// Rule names of refusals.
const (
	RuleAdvancedRequired = "advanced_level_required"
	RuleInactive         = "citizen_inactive"
	RuleRole             = "staff_role"
	RuleDowngrade        = "no_silent_downgrade"
)

// HowToReachAdvanced tells a basic citizen how to reach the advanced level.
const HowToReachAdvanced = "to reach the advanced level, register in person at a Cl@ve registry office " +
	"(Tax Agency, Social Security, Public Employment Service or Government delegation office) with your " +
	"identity document, or online with an electronic certificate or DNIe"

// ParseLevel parses a registration level name.
func ParseLevel(s string) (Level, error) {
	switch Level(s) {
	case Basic, Advanced:
		return Level(s), nil
	}
	return "", fmt.Errorf("unknown registration level %q (want basic or advanced)", s)
}

// ParseMethod parses a registration method name.
func ParseMethod(s string) (Method, error) {
	for _, m := range Methods {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown registration method %q (want in_person, electronic_certificate, video_call or invitation_letter)", s)
}

// Grants is the level a registration method gives: identity checked face
// to face or by a qualified certificate is advanced; remote checks without
// one are basic.
func (m Method) Grants() Level {
	switch m {
	case InPerson, ElectronicCertificate:
		return Advanced
	}
	return Basic
}

// Rank orders levels so that upgrades and downgrades can be told apart.
func (l Level) Rank() int {
	switch l {
	case Advanced:
		return 2
	case Basic:
		return 1
	}
	return 0
}

// MaySign decides whether a citizen at level with status may hold a cloud
// certificate and sign with Cl@ve Firma: only active advanced citizens may.
func MaySign(level Level, status string) error {
	if status != "" && status != "active" {
		return &Refusal{Rule: RuleInactive, Reason: fmt.Sprintf("the citizen's Cl@ve registration is %s, so Cl@ve Firma cannot be used", status)}
	}
	if level != Advanced {
		return &Refusal{Rule: RuleAdvancedRequired, Reason: "Cl@ve Firma needs the advanced registration level and this citizen is registered at the " +
			string(level) + " level; " + HowToReachAdvanced}
	}
	return nil
}

// MayRegister decides whether a staff member with role may complete a
// registration by method. Only in_person and video_call are done by staff.
func MayRegister(role Role, m Method) error {
	switch {
	case role == Administrator && (m == InPerson || m == VideoCall):
		return nil
	case m == InPerson && role == Registrar:
		return nil
	case m == VideoCall && role == VideoAgent:
		return nil
	case m == InPerson:
		return &Refusal{Rule: RuleRole, Reason: "only a registrar may register a citizen in person"}
	case m == VideoCall:
		return &Refusal{Rule: RuleRole, Reason: "only a video agent may complete a video-call registration"}
	}
	return &Refusal{Rule: RuleRole, Reason: fmt.Sprintf("registration by %s is done by the citizen, not by staff", m)}
}

// MayManage decides whether a staff member may change or remove citizens
// (downgrade, remove, reissue activation codes): registrars only.
func MayManage(role Role) error {
	if role != Registrar && role != Administrator {
		return &Refusal{Rule: RuleRole, Reason: "only a registrar may manage registered citizens"}
	}
	return nil
}

// ChangeLevel decides the level after a registration by m of a citizen
// already at current: a higher level wins, and a basic method never lowers
// an advanced citizen (a downgrade is an explicit registrar act instead).
func ChangeLevel(current Level, m Method) (Level, error) {
	next := m.Grants()
	if current.Rank() > next.Rank() {
		return current, &Refusal{Rule: RuleDowngrade, Reason: fmt.Sprintf(
			"the citizen is already registered at the %s level; registering by %s gives only %s, and levels are never lowered this way", current, m, next)}
	}
	return next, nil
}
