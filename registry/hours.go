package registry

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Madrid even on hosts without a zoneinfo database
)

// ErrClosed is wrapped by *ClosedError, for errors.Is.
var ErrClosed = errors.New("outside service hours")

// Hours are the opening windows of a staffed service (the video-call
// registration), in a time zone.
type Hours struct {
	loc  *time.Location
	days [7][]window // indexed by time.Weekday
	spec string
}

type window struct{ start, end int } // minutes after local midnight, end exclusive

// DefaultHoursSpec is Cl@ve's video-call timetable.
const DefaultHoursSpec = "Mon-Fri 09:00-14:00,15:00-18:00"

// DefaultZone is where the timetable is kept.
const DefaultZone = "Europe/Madrid"

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// ParseHours parses a timetable such as "Mon-Fri 09:00-14:00,15:00-18:00;
// Sat 10:00-13:00" in the named IANA zone ("" means Europe/Madrid).
func ParseHours(spec, zone string) (*Hours, error) {
	if zone == "" {
		zone = DefaultZone
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("service hours zone %q: %w", zone, err)
	}
	h := &Hours{loc: loc, spec: strings.TrimSpace(spec)}
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		dayPart, times, ok := strings.Cut(part, " ")
		if !ok {
			return nil, fmt.Errorf("service hours %q: want days then times, e.g. \"Mon-Fri 09:00-14:00\"", part)
		}
		days, err := parseDays(dayPart)
		if err != nil {
			return nil, fmt.Errorf("service hours %q: %w", part, err)
		}
		for _, tr := range strings.Split(times, ",") {
			from, to, ok := strings.Cut(strings.TrimSpace(tr), "-")
			if !ok {
				return nil, fmt.Errorf("service hours %q: time range %q: want HH:MM-HH:MM", part, tr)
			}
			s, err1 := parseClock(from)
			e, err2 := parseClock(to)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("service hours %q: %w", part, err)
			}
			if e <= s {
				return nil, fmt.Errorf("service hours %q: range %q ends before it starts", part, tr)
			}
			for _, d := range days {
				h.days[d] = append(h.days[d], window{s, e})
			}
		}
	}
	empty := true
	for d := range h.days {
		ws := h.days[d]
		for i := 1; i < len(ws); i++ { // insertion sort: a handful of windows
			for j := i; j > 0 && ws[j].start < ws[j-1].start; j-- {
				ws[j], ws[j-1] = ws[j-1], ws[j]
			}
		}
		for i := 1; i < len(ws); i++ {
			if ws[i].start < ws[i-1].end {
				return nil, fmt.Errorf("service hours: overlapping ranges on %s", time.Weekday(d))
			}
		}
		if len(ws) > 0 {
			empty = false
		}
	}
	if empty {
		return nil, fmt.Errorf("service hours %q: no opening windows", spec)
	}
	return h, nil
}

func parseDays(s string) ([]time.Weekday, error) {
	var out []time.Weekday
	for _, r := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(strings.ToLower(strings.TrimSpace(r)), "-")
		a, ok := weekdays[from]
		if !ok {
			return nil, fmt.Errorf("unknown day %q (want Mon, Tue, Wed, Thu, Fri, Sat or Sun)", from)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, ok := weekdays[to]
		if !ok {
			return nil, fmt.Errorf("unknown day %q (want Mon, Tue, Wed, Thu, Fri, Sat or Sun)", to)
		}
		for d := a; ; d = (d + 1) % 7 {
			out = append(out, d)
			if d == b {
				break
			}
		}
	}
	return out, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		if strings.TrimSpace(s) == "24:00" {
			return 24 * 60, nil
		}
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// String returns the timetable and its zone.
func (h *Hours) String() string { return h.spec + " " + h.loc.String() }

// Location returns the timetable's zone.
func (h *Hours) Location() *time.Location { return h.loc }

// Open reports whether t falls inside an opening window.
func (h *Hours) Open(t time.Time) bool {
	lt := t.In(h.loc)
	m := lt.Hour()*60 + lt.Minute()
	for _, w := range h.days[lt.Weekday()] {
		if m >= w.start && m < w.end {
			return true
		}
	}
	return false
}

// Next returns the start of the first opening window after t.
func (h *Hours) Next(t time.Time) time.Time {
	lt := t.In(h.loc)
	for i := 0; i < 8; i++ {
		day := time.Date(lt.Year(), lt.Month(), lt.Day()+i, 0, 0, 0, 0, h.loc)
		for _, w := range h.days[day.Weekday()] {
			// time.Date normalises across DST changes, unlike adding minutes
			// to midnight.
			start := time.Date(day.Year(), day.Month(), day.Day(), w.start/60, w.start%60, 0, 0, h.loc)
			if start.After(t) {
				return start
			}
		}
	}
	return time.Time{} // unreachable: ParseHours refuses an empty week
}

// ClosedError refuses a request made outside service hours and names the
// next opening.
type ClosedError struct {
	Service string
	Hours   *Hours
	Next    time.Time // in the timetable's zone
}

func (e *ClosedError) Error() string {
	return fmt.Sprintf("%s is only available %s; the next opening is %s", e.Service, e.Hours,
		e.Next.Format("Monday 2006-01-02 15:04 MST"))
}

// Unwrap makes errors.Is(err, ErrClosed) hold.
func (e *ClosedError) Unwrap() error { return ErrClosed }
