package rotation

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/rules"
)

func summarize(keys []Key) Summary {
	s := Summary{Keys: len(keys), ByStatus: map[rules.Status]int{}, Flags: map[string]int{}}
	for _, st := range []rules.Status{rules.Compliant, rules.NonCompliant, rules.StatusUnknown, rules.NotEligible, rules.NotApplicable} {
		s.ByStatus[st] = 0
	}
	for _, c := range rules.Controls {
		cs := ControlSummary{Check: c.Check, Title: c.Title, Refs: c.Refs, Counts: map[rules.Status]int{}}
		for _, st := range []rules.Status{rules.Compliant, rules.NonCompliant, rules.StatusUnknown, rules.NotEligible, rules.NotApplicable} {
			cs.Counts[st] = 0
		}
		for _, k := range keys {
			for _, r := range k.Judgement.Checks {
				if r.Check == c.Check {
					cs.Counts[r.Status]++
				}
			}
		}
		s.Controls = append(s.Controls, cs)
	}
	for _, k := range keys {
		s.ByStatus[k.Judgement.Status]++
		for _, f := range k.Flags {
			s.Flags[f.ID]++
		}
	}
	return s
}

// appendix lists every event a finding or flag rests on.
func (b *builder) appendix(keys []Key) []EvidenceItem {
	byEvent := map[string]*EvidenceItem{}
	index := map[string]*ev{}
	for _, k := range b.keys {
		for _, list := range [][]*ev{k.events, k.unusable} {
			for _, e := range list {
				index[e.eventID] = e
			}
		}
	}
	keyARN := map[int64]string{}
	for _, k := range b.keys {
		keyARN[k.id] = k.arn
	}
	add := func(id, finding string) {
		e := index[id]
		if e == nil {
			return
		}
		it := byEvent[id]
		if it == nil {
			it = &EvidenceItem{EventID: id, Time: e.t(), Name: e.name, KeyARN: keyARN[e.key], Principal: b.principal(e), Error: e.errCode}
			switch {
			case e.deletionDate != 0:
				it.Detail = "deletion date " + report.FormatDate(time.Unix(e.deletionDate, 0))
			case e.validTo != 0:
				it.Detail = "valid to " + report.FormatDate(time.Unix(e.validTo, 0))
			case e.rotationType != "":
				it.Detail = "rotation type " + e.rotationType
			}
			if e.det != nil && e.det.RotationPeriodDays > 0 {
				it.Detail = "rotation period " + strconv.Itoa(e.det.RotationPeriodDays) + " days"
			}
			if e.det != nil && e.det.ImportType != "" {
				it.Detail = strings.TrimPrefix(it.Detail+", ", ", ") + "import type " + e.det.ImportType
			}
			if e.material != "" {
				it.Detail = strings.TrimPrefix(it.Detail+", ", ", ") + "key material " + e.material
			}
			byEvent[id] = it
		}
		for _, f := range it.Findings {
			if f == finding {
				return
			}
		}
		it.Findings = append(it.Findings, finding)
	}
	for _, k := range keys {
		for _, c := range k.Judgement.Checks {
			if c.Status == rules.Compliant || c.Status == rules.NotApplicable {
				continue
			}
			for _, r := range k.Evidence {
				add(r.EventID, c.Check+":"+c.Rule)
			}
		}
		for _, f := range k.Flags {
			for _, id := range f.Evidence {
				add(id, f.ID)
			}
		}
	}
	out := make([]EvidenceItem, 0, len(byEvent))
	for _, it := range byEvent {
		out = append(out, *it)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].EventID < out[j].EventID
	})
	return out
}
