package registry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/registry"
)

func TestHours(t *testing.T) {
	h, err := registry.ParseHours(registry.DefaultHoursSpec, "Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, hh, mm int) time.Time { return time.Date(2026, 11, day, hh, mm, 0, 0, madrid) }
	// 2026-11-25 is a Wednesday, 27 a Friday, 30 a Monday.
	tests := []struct {
		name string
		t    time.Time
		open bool
		next time.Time
	}{
		{"wednesday 10:00", at(25, 10, 0), true, at(25, 15, 0)},
		{"wednesday 08:59", at(25, 8, 59), false, at(25, 9, 0)},
		{"wednesday 14:00 closes", at(25, 14, 0), false, at(25, 15, 0)},
		{"wednesday 14:30 lunch", at(25, 14, 30), false, at(25, 15, 0)},
		{"wednesday 17:59", at(25, 17, 59), true, at(26, 9, 0)},
		{"wednesday 20:00", at(25, 20, 0), false, at(26, 9, 0)},
		{"friday 19:00", at(27, 19, 0), false, at(30, 9, 0)},
		{"saturday 11:00", at(28, 11, 0), false, at(30, 9, 0)},
		{"sunday 23:59", at(29, 23, 59), false, at(30, 9, 0)},
		// 09:00 Madrid is 08:00 UTC in winter: the zone, not UTC, rules.
		{"utc input", time.Date(2026, 11, 25, 7, 30, 0, 0, time.UTC), false, at(25, 9, 0)},
		// DST ends 2026-10-25 (Sunday): Monday's opening is still 09:00 local.
		{"across DST change", time.Date(2026, 10, 24, 12, 0, 0, 0, madrid), false, time.Date(2026, 10, 26, 9, 0, 0, 0, madrid)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.Open(tt.t); got != tt.open {
				t.Errorf("Open(%v) = %v, want %v", tt.t, got, tt.open)
			}
			if got := h.Next(tt.t); !got.Equal(tt.next) {
				t.Errorf("Next(%v) = %v, want %v", tt.t, got, tt.next)
			}
		})
	}
}

func TestParseHoursErrors(t *testing.T) {
	tests := []struct{ spec, zone, want string }{
		{"Mon-Fri 09:00-14:00", "Mars/Olympus", "zone"},
		{"Mon-Fry 09:00-14:00", "", "unknown day"},
		{"Mon 14:00-09:00", "", "ends before it starts"},
		{"Mon 09:00-14:00,13:00-15:00", "", "overlapping"},
		{"Mon 9-14", "", "want HH:MM"},
		{"", "", "no opening windows"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := registry.ParseHours(tt.spec, tt.zone)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseHours(%q) error = %v, want one containing %q", tt.spec, err, tt.want)
			}
		})
	}
	h, err := registry.ParseHours("Sat-Sun 10:00-13:00; Wed 16:00-20:00", "Atlantic/Canary")
	if err != nil {
		t.Fatal(err)
	}
	canary, _ := time.LoadLocation("Atlantic/Canary")
	if got, want := h.Next(time.Date(2026, 11, 25, 20, 0, 0, 0, canary)), time.Date(2026, 11, 28, 10, 0, 0, 0, canary); !got.Equal(want) {
		t.Errorf("custom hours: Next = %v, want %v", got, want)
	}
}
