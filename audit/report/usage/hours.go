package usage

import (
	"fmt"
	"strings"
	"time"
)

var weekdayNames = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ParseWeekdays reads "Mon-Fri", "Sun-Thu" or "Mon,Wed,Fri" (English
// three-letter names, case-insensitive) into a set.
func ParseWeekdays(s string) ([7]bool, error) {
	var set [7]bool
	idx := func(n string) (int, error) {
		for i, w := range weekdayNames {
			if strings.EqualFold(strings.TrimSpace(n), w) {
				return i, nil
			}
		}
		return 0, fmt.Errorf("unknown weekday %q (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", n)
	}
	for _, part := range strings.Split(s, ",") {
		a, b, rng := strings.Cut(part, "-")
		i, err := idx(a)
		if err != nil {
			return set, err
		}
		if !rng {
			set[i] = true
			continue
		}
		j, err := idx(b)
		if err != nil {
			return set, err
		}
		for d := i; ; d = (d + 1) % 7 {
			set[d] = true
			if d == j {
				break
			}
		}
	}
	return set, nil
}

// resolve fills defaults and checks the definition.
func (bh BusinessHours) resolve() (BusinessHours, *time.Location, error) {
	if bh.Zone == "" {
		bh.Zone = "UTC"
	}
	if bh.Weekdays == "" {
		bh.Weekdays = "Mon-Fri"
	}
	if bh.StartHour == 0 && bh.EndHour == 0 {
		bh.StartHour, bh.EndHour = 8, 18
	}
	if bh.StartHour < 0 || bh.EndHour > 24 || bh.StartHour >= bh.EndHour {
		return bh, nil, fmt.Errorf("business hours %02d:00-%02d:00: the start must be before the end, within 0-24", bh.StartHour, bh.EndHour)
	}
	loc, err := time.LoadLocation(bh.Zone)
	if err != nil {
		return bh, nil, fmt.Errorf("business hours time zone %q: %w (use an IANA name such as Europe/Berlin)", bh.Zone, err)
	}
	if _, err := ParseWeekdays(bh.Weekdays); err != nil {
		return bh, nil, fmt.Errorf("business days: %w", err)
	}
	return bh, loc, nil
}

// String describes the business hours for a person.
func (bh BusinessHours) String() string {
	return fmt.Sprintf("%s %02d:00-%02d:00 (%s)", bh.Weekdays, bh.StartHour, bh.EndHour, bh.Zone)
}

// bhCache answers "outside business hours?" for events in time order: the
// answer is the same for a whole quarter hour in every time zone (all UTC
// offsets are multiples of 15 minutes), so it is computed once per quarter.
type bhCache struct {
	bh     BusinessHours
	loc    *time.Location
	days   [7]bool
	init   bool
	bucket int64
	out    bool
}

func (c *bhCache) outside(t int64) bool {
	if !c.init {
		c.days, _ = ParseWeekdays(c.bh.Weekdays)
		c.init = true
	}
	q := t / 900
	if t < 0 {
		q--
	}
	if q == c.bucket {
		return c.out
	}
	lt := time.Unix(t, 0).In(c.loc)
	h := lt.Hour()
	c.bucket = q
	c.out = !c.days[lt.Weekday()] || h < c.bh.StartHour || h >= c.bh.EndHour
	return c.out
}
