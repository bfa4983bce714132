package rotation

import (
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/rules"
)

// The key material: its age (from the rotations in the logs, the
// inventory's rotation status and its key-material history), an imported
// material's expiry, and an EXTERNAL key's compensating control (state
// rules S4, S5, S11, S13, S15, S16).

// materialAge: the age of the key material has bounds: at most the time
// since the last creation or rotation seen (a rotation hidden in a gap
// could only make it younger), at least the length of complete logs
// without a rotation. GetKeyRotationStatus's NextRotationDate minus the
// period dates the last rotation. Also the next automatic rotation and the
// date the policy requires the next one.
func (j *judging) materialAge() {
	key, f, inv, to := &j.key, &j.f, j.k.inv, j.to
	born := key.Created
	if lastRot := j.lastRot; lastRot != nil && lastRot.t().After(born) {
		born = lastRot.t()
		key.LastRotation = lastRot.t()
		key.LastRotationType = lastRot.rotationType
		if lastRot.name == "RotateKeyOnDemand" {
			key.LastRotationType = "ON_DEMAND"
		}
		j.ref("last rotation", lastRot)
	}
	if inv != nil && inv.asOf < to.Unix() && inv.next.Valid && inv.rot.Valid && inv.rot.Int64 == 1 && f.RotationPeriod > 0 {
		// GetKeyRotationStatus's NextRotationDate is one period after the
		// last rotation.
		if t := time.Unix(inv.next.Int64, 0).UTC().AddDate(0, 0, -f.RotationPeriod); t.After(born) && !t.After(to) {
			born = t
			key.Sources["last_rotation"] = j.invSrc + " (NextRotationDate minus the rotation period)"
			key.LastRotation = t
		}
	}
	key.Rotations = j.rotations
	// The inventory's key-material history dates every rotation up to its
	// snapshot, those older than the logs included (state rule S15).
	complete := false // a snapshot at or after the end lists every rotation up to it
	if r, n, asOf := j.inventoryRotation(); r != nil {
		complete = asOf >= to.Unix()
		if t := time.Unix(r.rotated, 0).UTC(); t.After(born) {
			born = t
			key.LastRotation, key.LastRotationType = t, r.rotType
			key.Sources["last_rotation"] = fmt.Sprintf("key-material history (ListKeyRotations) of the inventory as of %s: material %s",
				report.FormatTime(time.Unix(asOf, 0)), r.id)
		}
		if complete || n > key.Rotations {
			key.Rotations = max(n, j.rotations)
		}
	}
	// KMS rotates automatically one period after rotation was enabled or
	// after the last automatic rotation; on-demand rotations do not move
	// that schedule.
	if f.RotationEnabled == rules.Yes && f.RotationPeriod > 0 {
		var base time.Time
		if j.enableEv != nil {
			base = j.enableEv.t()
		}
		if j.lastAuto != nil && j.lastAuto.t().After(base) {
			base = j.lastAuto.t()
		}
		switch {
		case key.Sources["rotation_enabled"] == j.invSrc && j.invSrc != "" && inv.next.Valid:
			key.NextAutomaticRotation = time.Unix(inv.next.Int64, 0).UTC()
		case !base.IsZero():
			key.NextAutomaticRotation = base.AddDate(0, 0, f.RotationPeriod)
		}
	}
	cs := j.cs
	if !born.IsZero() {
		f.MaterialAgeMaxKnown = true
		f.MaterialAgeMax = days(to.Sub(born))
		if j.covered(born) || complete {
			f.MaterialAgeMin = f.MaterialAgeMax
		} else if cs.Before(to) {
			f.MaterialAgeMin = days(to.Sub(cs))
		}
		age := f.MaterialAgeMax
		key.MaterialAgeDays = &age
		key.MaterialAgeExact = f.MaterialAgeMin == f.MaterialAgeMax
		key.PolicyDue = born.AddDate(0, 0, j.p.RotationDays)
	} else if cs.Before(to) {
		f.MaterialAgeMin = days(to.Sub(cs))
	}
	if f.MaterialAgeMin > j.p.RotationDays {
		key.DaysOverdue = f.MaterialAgeMin - j.p.RotationDays
	}
}

// inventoryRotation is the last rotation of the key-material history at
// or before the end of the period, how many it lists up to then, and the
// snapshot's time (nil when the history dates none).
func (j *judging) inventoryRotation() (last *material, n int, asOf int64) {
	for i := range j.k.materials {
		m := &j.k.materials[i]
		asOf = max(asOf, m.asOf)
		if m.rotated == 0 || m.rotated > j.to.Unix() {
			continue
		}
		n++
		if last == nil || m.rotated > last.rotated {
			last = m
		}
	}
	return last, n, asOf
}

// importedMaterial (state rules S11, S13, S15): the last import of key
// material states its expiration and its validity span, known while no
// gap follows it (a later import could hide there); without it, an
// inventory snapshot inside the period states the current material's
// expiration model and valid-to date (ListKeyRotations' CURRENT material,
// else DescribeKey), but not when it was imported.
func (j *judging) importedMaterial() {
	key, f, inv := &j.key, &j.f, j.k.inv
	if lastImport := j.lastImport; lastImport != nil {
		j.ref("last import of key material", lastImport)
		if lastImport.validTo != 0 {
			f.ImportExpires = rules.Yes
			key.ImportValidTo = time.Unix(lastImport.validTo, 0).UTC()
			f.ImportValidDays = int((lastImport.validTo - lastImport.time + int64(day/time.Second) - 1) / int64(day/time.Second))
			key.ImportExpirationModel = "KEY_MATERIAL_EXPIRES"
		} else {
			f.ImportExpires = rules.No
			key.ImportExpirationModel = "KEY_MATERIAL_DOES_NOT_EXPIRE"
		}
		if d := lastImport.det; d != nil && d.ExpirationModel != "" {
			key.ImportExpirationModel = d.ExpirationModel
			f.ImportExpires = rules.TriOf(d.ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE")
		}
		if lastImport.material != "" {
			key.MaterialIDs = append(key.MaterialIDs, lastImport.material)
		}
		if g, gap := j.gapAfter(lastImport.t(), time.Time{}); gap {
			f.ImportUnknownSince = g
			j.b.gapNote(key, "imported material", lastImport.t(), g)
		} else {
			f.ImportModelKnown, f.ImportValidKnown = true, true // the import itself states both
		}
		return
	}
	if inv == nil || inv.asOf >= j.to.Unix() {
		return
	}
	model, validTo, at, src := inv.expModel.String, inv.validTo.Int64, inv.asOf, j.invSrc
	if m := j.currentMaterial(); m != nil && m.expModel != "" {
		model, validTo, at = m.expModel, m.validTo, m.asOf
		src = fmt.Sprintf("key-material history (ListKeyRotations) of the inventory as of %s: current material %s", report.FormatTime(time.Unix(m.asOf, 0)), m.id)
		key.MaterialIDs = appendUniq(key.MaterialIDs, m.id)
	}
	if model == "" {
		return
	}
	key.ImportExpirationModel = model
	f.ImportExpires = rules.TriOf(model != "KEY_MATERIAL_DOES_NOT_EXPIRE")
	if validTo != 0 {
		key.ImportValidTo = time.Unix(validTo, 0).UTC()
	}
	key.Sources["import_expiration"] = src
	t := time.Unix(at, 0).UTC()
	if g, gap := j.gapAfter(t, time.Time{}); gap {
		f.ImportUnknownSince = g
		j.b.gapNote(key, "imported material", t, g)
	} else {
		f.ImportModelKnown = true // the validity span needs the import's time, which the inventory does not state
	}
}

// currentMaterial is the material the inventory's key-material history
// lists as current in a snapshot inside the period (nil if none).
func (j *judging) currentMaterial() *material {
	var cur *material
	for i := range j.k.materials {
		m := &j.k.materials[i]
		if m.state == "CURRENT" && m.asOf < j.to.Unix() && (cur == nil || m.asOf > cur.asOf) {
			cur = m
		}
	}
	return cur
}

// compensatingControl: for an EXTERNAL key, to which automatic rotation
// does not apply, the last RotateKeyOnDemand and the import of new key
// material before it, with key material ids, and how long ago.
func (j *judging) compensatingControl() {
	key, f := &j.key, &j.f
	lastOnDemand := j.lastOnDemand
	if key.Origin != "EXTERNAL" {
		return
	}
	if m := j.inventoryOnDemand(); m != nil && (lastOnDemand == nil || m.rotated > lastOnDemand.time) {
		// Dated by the key-material history only (older than the logs, or
		// in a gap).
		f.CompensatingKnown = true
		t := time.Unix(m.rotated, 0).UTC()
		f.CompensatingAge = days(j.to.Sub(t))
		key.MaterialIDs = appendUniq(key.MaterialIDs, m.id)
		key.Compensating = fmt.Sprintf("rotated on demand %s (key material %s), per the key-material history (ListKeyRotations) of the inventory as of %s; the import of that material is not in the logs",
			report.FormatDate(t), m.id, report.FormatTime(time.Unix(m.asOf, 0)))
		return
	}
	if lastOnDemand == nil {
		key.Compensating = "none evidenced: no RotateKeyOnDemand in the logs"
		return
	}
	f.CompensatingKnown = true
	f.CompensatingAge = days(j.to.Sub(lastOnDemand.t()))
	j.ref("on-demand rotation", lastOnDemand)
	var newImport *ev
	for i := len(j.k.events) - 1; i >= 0; i-- {
		e := j.k.events[i]
		if e.time <= lastOnDemand.time && e.name == "ImportKeyMaterial" && e.errCode == "" {
			newImport = e
			break
		}
	}
	desc := "rotated on demand " + report.FormatDate(lastOnDemand.t())
	mat := lastOnDemand.material
	if lastOnDemand.det != nil && lastOnDemand.det.KeyMaterialID != "" {
		mat = lastOnDemand.det.KeyMaterialID
	}
	if mat != "" {
		desc += " (key material " + mat + ")"
		key.MaterialIDs = appendUniq(key.MaterialIDs, mat)
	}
	if newImport != nil {
		it := "import"
		if newImport.det != nil && newImport.det.ImportType != "" {
			it = newImport.det.ImportType + " import"
		}
		desc = it + " " + report.FormatDate(newImport.t()) + (map[bool]string{true: " (key material " + newImport.material + ")", false: ""}[newImport.material != ""]) + ", then " + desc
		j.ref("material imported before on-demand rotation", newImport)
		if newImport.material != "" {
			key.MaterialIDs = appendUniq(key.MaterialIDs, newImport.material)
		}
	} else {
		desc += "; the import of that material is not in the logs"
	}
	key.Compensating = desc
}

// inventoryOnDemand is the last on-demand rotation the key-material
// history dates at or before the end of the period.
func (j *judging) inventoryOnDemand() *material {
	var last *material
	for i := range j.k.materials {
		m := &j.k.materials[i]
		if m.rotType == "ON_DEMAND" && m.rotated != 0 && m.rotated <= j.to.Unix() && (last == nil || m.rotated > last.rotated) {
			last = m
		}
	}
	return last
}

func appendUniq(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
