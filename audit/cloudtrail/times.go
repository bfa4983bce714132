package cloudtrail

import (
	"strconv"
	"strings"
	"time"
)

// ParseEventTime parses a CloudTrail eventTime into Unix seconds (UTC).
// CloudTrail writes "2006-01-02T15:04:05Z"; that form is parsed without
// time.Parse because it runs once per record. Other ISO forms (fractions,
// offsets, a space instead of T as Athena writes) go the slow way.
func ParseEventTime(s string) (int64, bool) {
	if len(s) == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == 'Z' {
		y, ok1 := digits(s[0:4])
		mo, ok2 := digits(s[5:7])
		d, ok3 := digits(s[8:10])
		h, ok4 := digits(s[11:13])
		mi, ok5 := digits(s[14:16])
		se, ok6 := digits(s[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysIn(mo, y) && h < 24 && mi < 60 && se < 61 {
			return daysFromCivil(y, mo, d)*86400 + int64(h*3600+mi*60+se), true
		}
		return 0, false
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), true
		}
	}
	return 0, false
}

var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

// ParseBodyTime parses a date found inside requestParameters or
// responseElements into Unix seconds (UTC). KMS writes these in a Java
// locale format, not ISO: "Jan 1, 2021 8:00:00 PM", "Aug 10, 2022, 10:38:27 PM",
// and sometimes a 24-hour clock with a stray meridiem ("Apr 12, 2021 18:58:30
// PM", which means 18:58:30). The AWS CLI writes ISO 8601 or epoch seconds.
// All are taken as UTC.
func ParseBodyTime(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if t, ok := ParseEventTime(s); ok {
		return t, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f > 1e11 { // milliseconds
			f /= 1000
		}
		return int64(f), true
	}
	meridiem := ""
	if n := len(s); n > 3 && s[n-3] == ' ' {
		switch strings.ToUpper(s[n-2:]) {
		case "AM", "PM":
			meridiem = strings.ToUpper(s[n-2:])
			s = s[:n-3]
		}
	}
	for _, layout := range bodyLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		h := t.Hour()
		switch {
		case meridiem == "PM" && h < 12:
			t = t.Add(12 * time.Hour)
		case meridiem == "AM" && h == 12:
			t = t.Add(-12 * time.Hour)
		}
		return t.Unix(), true
	}
	return 0, false
}

var bodyLayouts = []string{
	"Jan 2, 2006 15:04:05",
	"Jan 2, 2006, 15:04:05",
	"Jan 2, 2006 15:04",
	"Jan 2, 2006",
	"January 2, 2006 15:04:05",
	"2006-01-02",
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is Howard Hinnant's algorithm: days since 1970-01-01.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
