package rating

import (
	"testing"
	"time"
)

func TestPeriodFor(t *testing.T) {
	at := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	shanghai := time.FixedZone("CST", 8*3600)
	cases := []struct {
		name       string
		anchor     int
		t          time.Time
		start, end time.Time
		days       int
	}{
		{"anchor 31 in February clamps to the 28th", 31, at(2026, 2, 15, 0), day(2026, 1, 31), day(2026, 2, 28), 28},
		{"anchor 31 from the clamped February start", 31, at(2026, 2, 28, 0), day(2026, 2, 28), day(2026, 3, 31), 31},
		{"anchor 31 does not drift after February", 31, at(2026, 4, 2, 0), day(2026, 3, 31), day(2026, 4, 30), 30},
		{"leap year: anchor 31 clamps to the 29th", 31, at(2028, 2, 10, 0), day(2028, 1, 31), day(2028, 2, 29), 29},
		{"leap year: anchor 29 starts on Feb 29", 29, at(2028, 2, 29, 12), day(2028, 2, 29), day(2028, 3, 29), 29},
		{"non-leap year: anchor 29 starts on Feb 28", 29, at(2027, 2, 28, 12), day(2027, 2, 28), day(2027, 3, 29), 29},
		{"anchor 15 across the year end, December side", 15, time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), day(2026, 12, 15), day(2027, 1, 15), 31},
		{"anchor 15 across the year end, January side", 15, at(2027, 1, 14, 0), day(2026, 12, 15), day(2027, 1, 15), 31},
		{"start instant belongs to the new period", 15, at(2027, 1, 15, 0), day(2027, 1, 15), day(2027, 2, 15), 31},
		{"local time is converted to UTC", 15, time.Date(2027, 1, 15, 5, 0, 0, 0, shanghai), day(2026, 12, 15), day(2027, 1, 15), 31},
		{"anchor 1", 1, at(2026, 4, 30, 23), day(2026, 4, 1), day(2026, 5, 1), 30},
		{"anchor below range clamps to 1", 0, at(2026, 4, 30, 0), day(2026, 4, 1), day(2026, 5, 1), 30},
		{"anchor above range clamps to 31", 40, at(2026, 2, 15, 0), day(2026, 1, 31), day(2026, 2, 28), 28},
	}
	for _, tc := range cases {
		p := PeriodFor(tc.anchor, tc.t)
		if !p.Start.Equal(tc.start) || !p.End.Equal(tc.end) || p.Start.Location() != time.UTC || p.End.Location() != time.UTC {
			t.Errorf("%s: PeriodFor(%d, %v) = [%v, %v), want [%v, %v)", tc.name, tc.anchor, tc.t, p.Start, p.End, tc.start, tc.end)
		}
		if p.Days() != tc.days {
			t.Errorf("%s: Days() = %d, want %d", tc.name, p.Days(), tc.days)
		}
	}
}
