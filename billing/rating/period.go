package rating

import "time"

// Period is a half-open billing period [Start, End).
type Period struct {
	Start, End time.Time
}

// PeriodFor returns the monthly period containing t whose start falls on anchorDay of a month,
// in UTC. An anchor past a month's end is clamped to that month only (anchor 31 gives Jan 31,
// Feb 28, Mar 31), so short months do not drag later periods earlier. An anchorDay outside
// 1–31 is clamped into it rather than failing, because a billing run should not halt on it.
func PeriodFor(anchorDay int, t time.Time) Period {
	anchorDay = min(max(anchorDay, 1), 31)
	t = t.UTC()
	start := anchorIn(anchorDay, t.Year(), t.Month())
	if t.Before(start) {
		start = anchorIn(anchorDay, t.Year(), t.Month()-1)
	}
	return Period{Start: start, End: anchorIn(anchorDay, start.Year(), start.Month()+1)}
}

// anchorIn relies on time.Date normalising month 0 and 13 into the adjacent year.
func anchorIn(anchorDay, year int, month time.Month) time.Time {
	first := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(anchorDay, last), 0, 0, 0, 0, time.UTC)
}

// Days is the length in whole days, rounded down; periods from PeriodFor are always whole.
func (p Period) Days() int {
	return int(p.End.Sub(p.Start) / (24 * time.Hour))
}

func (p Period) secs() int64 { return p.End.Unix() - p.Start.Unix() }
