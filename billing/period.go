package billing

import "time"

// PeriodOf returns the monthly billing period [start, end) containing t for a tenant whose
// periods start on anchorDay (1–31, clamped to the month's last day), in UTC.
func PeriodOf(anchorDay int, t time.Time) (start, end time.Time) {
	t = t.UTC()
	at := func(y int, m time.Month) time.Time {
		last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
		return time.Date(y, m, min(max(anchorDay, 1), last), 0, 0, 0, 0, time.UTC)
	}
	start = at(t.Year(), t.Month())
	if t.Before(start) {
		start = at(t.Year(), t.Month()-1)
	}
	return start, at(start.Year(), start.Month()+1)
}
