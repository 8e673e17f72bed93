// Package langpick chooses a page's language from what a request says: an
// explicit switch, a remembered choice, then Accept-Language. It is pure
// and imports nothing of the module, so that its fuzz target links only
// this and golang.org/x/text: go's fuzzing instruments every package of
// the test binary and pays for all of their coverage counters on each
// execution, and the web package's binary (SQLite included) held its
// targets to a few hundred executions a second.
package langpick

import "golang.org/x/text/language"

// Picker chooses among a fixed set of languages.
type Picker struct {
	codes   []string
	matcher language.Matcher
}

// New picks among codes (BCP 47 base languages such as "es"); the first
// is the default.
func New(codes ...string) *Picker {
	tags := make([]language.Tag, len(codes))
	for i, c := range codes {
		tags[i] = language.Make(c)
	}
	return &Picker{codes: codes, matcher: language.NewMatcher(tags)}
}

// Pick chooses the language: the switch (?lang=) when it names one
// exactly, then the remembered choice (the cookie), then the best match
// of Accept-Language, then the default. switched says the switch chose.
func (p *Picker) Pick(query, cookie, acceptLanguage string) (code string, switched bool) {
	if c, ok := p.exact(query); ok {
		return c, true
	}
	if c, ok := p.exact(cookie); ok {
		return c, false
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return p.codes[0], false
	}
	_, i, conf := p.matcher.Match(tags...)
	if conf == language.No {
		return p.codes[0], false
	}
	return p.codes[i], false
}

func (p *Picker) exact(s string) (string, bool) {
	for _, c := range p.codes {
		if s != "" && s == c {
			return c, true
		}
	}
	return "", false
}
