package paygate

import (
	"time"
	_ "time/tzdata" // the business day's zone must resolve on machines without tzdata
)

// Date is a calendar date "YYYY-MM-DD": the accounting date of a posting.
// Dates compare correctly as strings.
type Date string

// ParseDate validates a "YYYY-MM-DD" string. Returns CodeInvalidArgument.
func ParseDate(s string) (Date, error) {
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return "", E(CodeInvalidArgument, "date must be YYYY-MM-DD")
	}
	return Date(s), nil
}

// Calendar maps instants to business days. A business day runs from one
// cut-off (local time in Location) to the next, so the day rolls over without
// stopping traffic: a posting simply carries the date of the day it fell in.
// Morning cut-offs (before 12:00) push early postings back to the previous
// date; evening cut-offs (such as 23:00) push late postings to the next date.
type Calendar struct {
	Location *time.Location
	Cutoff   time.Duration // offset from local midnight, 0 <= Cutoff < 24h
}

// DefaultCalendar closes the day at 00:00 Asia/Shanghai.
func DefaultCalendar() Calendar {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err) // time/tzdata is embedded, so this cannot happen
	}
	return Calendar{Location: loc}
}

// NewCalendar builds a Calendar from a zone name and an "HH:MM" cut-off.
// Returns CodeInvalidArgument for an unknown zone or a malformed cut-off.
func NewCalendar(zone, cutoff string) (Calendar, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return Calendar{}, E(CodeInvalidArgument, "unknown time zone %q", zone)
	}
	digit := func(i int) int { return int(cutoff[i] - '0') }
	ok := len(cutoff) == 5 && cutoff[2] == ':'
	for _, i := range []int{0, 1, 3, 4} {
		ok = ok && cutoff[i] >= '0' && cutoff[i] <= '9'
	}
	if !ok {
		return Calendar{}, E(CodeInvalidArgument, "cut-off must be HH:MM")
	}
	h, m := digit(0)*10+digit(1), digit(3)*10+digit(4)
	if h > 23 || m > 59 {
		return Calendar{}, E(CodeInvalidArgument, "cut-off must be HH:MM between 00:00 and 23:59")
	}
	return Calendar{Location: loc, Cutoff: time.Duration(h)*time.Hour + time.Duration(m)*time.Minute}, nil
}

// AccountingDate returns the business day t belongs to. With a cut-off before
// noon, instants before the cut-off belong to the previous date; with a
// cut-off at or after noon, instants at or after the cut-off belong to the
// next date. The default (00:00) is the plain local date.
func (c Calendar) AccountingDate(t time.Time) Date {
	loc := c.Location
	if loc == nil {
		loc = time.UTC
	}
	local := t.In(loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	sinceMidnight := local.Sub(midnight)
	day := midnight
	switch {
	case c.Cutoff < 12*time.Hour && sinceMidnight < c.Cutoff:
		day = day.AddDate(0, 0, -1)
	case c.Cutoff >= 12*time.Hour && sinceMidnight >= c.Cutoff:
		day = day.AddDate(0, 0, 1)
	}
	return Date(day.Format(time.DateOnly))
}
