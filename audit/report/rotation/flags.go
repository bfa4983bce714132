package rotation

import (
	"fmt"
	"strings"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/rules"
)

// flag adds a lifecycle flag with the events behind it.
func (j *judging) flag(id, text string, evs ...*ev) {
	ids := []string{}
	for _, e := range evs {
		if e != nil {
			ids = append(ids, e.eventID)
		}
	}
	j.key.Flags = append(j.key.Flags, Flag{ID: id, Text: text, Evidence: ids})
}

// flags raises the lifecycle flags, in the order the report lists them.
func (j *judging) flags() {
	key, f, p, to := &j.key, &j.f, j.p, j.to
	for _, c := range key.Judgement.Checks {
		switch {
		case c.Check == rules.CheckRotationEnabled && c.Status == rules.NonCompliant:
			j.flag(FlagRotationDisabled, "automatic rotation disabled on a customer managed symmetric key", j.rotEv)
		case c.Check == rules.CheckRotationPeriod && c.Status == rules.NonCompliant && f.MaterialAgeMin > p.RotationDays:
			last := j.lastRot
			if last == nil {
				last = j.create
			}
			j.flag(FlagRotationOverdue, fmt.Sprintf("rotation overdue by at least %d day(s)", key.DaysOverdue), last)
		}
	}
	if f.Deleted {
		j.flag(FlagDeleted, "key deleted on "+report.FormatDate(j.deleted.t()), j.deleted)
	}
	if f.PendingDeletion == rules.Yes {
		t := "deletion scheduled"
		if !f.DeletionDate.IsZero() {
			t += " for " + report.FormatDate(f.DeletionDate)
		}
		j.flag(FlagPendingDeletion, t, j.pendEv)
	}
	if j.keyEnabled == rules.No && f.PendingDeletion != rules.Yes && !f.Deleted {
		j.flag(FlagKeyDisabled, "key disabled", j.enEv)
	}
	if !key.ImportValidTo.IsZero() && !f.Deleted {
		switch vt := key.ImportValidTo; {
		case vt.Before(to) || j.materialGone != nil:
			t := "imported key material expired " + report.FormatDate(vt)
			if j.materialGone != nil {
				t = "imported key material deleted (" + j.materialGone.name + " " + report.FormatDate(j.materialGone.t()) + ")"
			}
			j.flag(FlagMaterialExpired, t, j.lastImport, j.materialGone)
		case vt.Before(to.AddDate(0, 0, p.ExpiryWarnDays)):
			j.flag(FlagMaterialExpiring, fmt.Sprintf("imported key material expires %s, within %d days of the end of the period", report.FormatDate(vt), p.ExpiryWarnDays), j.lastImport)
		}
	}
	j.flagUseWhileUnusable()
	if !key.CreatedInLogs {
		t := "created before the logs begin"
		if !key.Created.IsZero() {
			t = "created " + report.FormatDate(key.Created) + ", before the logs begin"
		}
		j.flag(FlagCreatedBefore, t+": CloudTrail evidence of its history is incomplete")
	}
	key.Gaps = append([]report.Gap{}, j.b.cov.Between(j.k.account, j.k.region, j.from, to)...)
	if len(key.Gaps) > 0 {
		n := 0
		for _, g := range key.Gaps {
			n += g.Days
		}
		j.flag(FlagCoverageGap, fmt.Sprintf("KMS evidence missing for %d day(s) of the period in %s/%s", n, j.k.account, j.k.region))
	}
}

// flagUseWhileUnusable counts the calls refused in the period because the
// key was disabled or pending deletion or import, by error code.
func (j *judging) flagUseWhileUnusable() {
	unusable := j.k.unusable
	if len(unusable) == 0 {
		return
	}
	byCode := map[string]int{}
	for _, e := range unusable {
		byCode[e.errCode]++
	}
	var parts []string
	for _, c := range unusableErrors {
		if n := byCode[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, c))
		}
	}
	fl := Flag{ID: FlagUseWhileUnusable, Count: len(unusable),
		Text: "use attempted while the key was disabled or pending deletion or import: " + strings.Join(parts, ", ")}
	for _, e := range unusable {
		fl.Evidence = append(fl.Evidence, e.eventID)
	}
	j.key.Flags = append(j.key.Flags, fl)
}
