package rotation

import (
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/rules"
)

// Judging one key: judge establishes, one fact after another, what the
// evidence says about the key at the end of the period (docs/audit-reports.md,
// "Rotation report" and "Evidence rules"), hands the facts to the rules
// package, which applies the eligibility and check tables (E1-E8, R0-R5,
// P0-P6, D0-D4, I0-I4), and raises the lifecycle flags. Each step below is
// one paragraph of that documentation:
//
//	identity            identity: inventory, else CreateKey, else an alias/aws/ alias
//	replayLifecycle     the rotation evidence, in time order
//	inventorySnapshot   "an inventory snapshot taken inside the period is evidence at its time"
//	rotationSetting     "a fact set by an event holds ... only if the logs ... are complete"
//	materialAge         the age of the key material, as bounds; next automatic rotation
//	deletion            "logs complete for more than 30 days ... establish not pending deletion"
//	state               the key state at the end of the period
//	importedMaterial    ImportKeyMaterial's validity, or the inventory's
//	compensatingControl for EXTERNAL keys: the import and the on-demand rotation after it
//	flags               the lifecycle flags (rotation-disabled, ..., coverage-gap)

// judging is one key's facts while judge establishes them.
type judging struct {
	b        *builder
	k        *keyRow
	from, to time.Time
	p        rules.Policy
	key      Key         // the report's row, filled step by step
	f        rules.Facts // what the rules read
	cs       time.Time   // the key's account and region have complete logs since
	invSrc   string      // "inventory as of ..." when a snapshot inside the period is used

	create *ev // the accepted CreateKey

	// The last event (or inventory snapshot) that set each setting, and when.
	rotAt, pendAt, enAt time.Time
	rotEv, pendEv, enEv *ev
	keyEnabled          rules.Tri

	lastRot, lastOnDemand, lastImport *ev
	lastAuto, enableEv                *ev
	deleted                           *ev
	materialGone                      *ev
	rotations                         int
}

func days(d time.Duration) int { return int(d / day) }

func tri(t rules.Tri) string { return t.String() }

func (b *builder) principal(e *ev) string { return b.princ[e.principal] }

// judge establishes the facts about one key at the end of the period and
// applies the rules. ok is false for a key outside the period.
func (b *builder) judge(k *keyRow) (Key, bool) {
	j := &judging{b: b, k: k, from: b.o.Scope.From, to: b.o.Scope.To, p: b.o.Policy,
		key: Key{ARN: k.arn, KeyID: k.keyID, Account: k.account, Region: k.region, Aliases: k.aliases,
			Sources: map[string]string{}, EventCounts: map[string]int{}, Flags: []Flag{}, Evidence: []EvidenceRef{}}}
	if j.key.Aliases == nil {
		j.key.Aliases = []string{}
	}
	j.identity()
	if !j.key.Created.IsZero() && j.key.Created.After(j.to) {
		return j.key, false // not yet created in the period
	}
	j.replayLifecycle()
	if j.deleted != nil && j.deleted.t().Before(j.from) {
		return j.key, false // deleted before the period
	}
	j.f.Manager, j.f.Spec, j.f.Origin = j.key.Manager, j.key.Spec, j.key.Origin
	j.inventorySnapshot()
	j.cs = b.cov.CompleteSince(k.account, k.region, j.to)
	j.rotationSetting()
	j.materialAge()
	j.deletion()
	j.state()
	j.importedMaterial()
	j.compensatingControl()

	j.key.Judgement = rules.Judge(j.f, j.p)
	j.key.RotationEnabled = tri(j.f.RotationEnabled)
	switch j.key.Judgement.Eligibility {
	case rules.NotEligibleKey: // a rotation setting means nothing for such a key
		j.key.RotationEnabled = "n/a"
	case rules.AWSManaged:
		j.key.RotationEnabled = "by AWS"
	}
	j.key.MaterialAgeMinDays = j.f.MaterialAgeMin

	j.flags()
	sort.SliceStable(j.key.Evidence, func(a, c int) bool { return j.key.Evidence[a].Time.Before(j.key.Evidence[c].Time) })
	return j.key, true
}

// ref records an event as evidence of a fact.
func (j *judging) ref(role string, e *ev) {
	j.key.Evidence = append(j.key.Evidence, EvidenceRef{Role: role, EventID: e.eventID, Time: e.t(), Name: e.name})
}

// covered says whether the logs are complete from t to the end of the period.
func (j *judging) covered(t time.Time) bool { return !t.IsZero() && !t.Before(j.cs) }

// identity: the static facts (spec, origin, manager, description,
// creation, custom key store) from the inventory, else from the CreateKey
// record, else manager AWS from an alias/aws/ alias.
func (j *judging) identity() {
	key, inv := &j.key, j.k.inv
	if inv != nil {
		key.InventoryAsOf = time.Unix(inv.asOf, 0).UTC()
		src := "inventory as of " + report.FormatTime(key.InventoryAsOf)
		set := func(field string, dst *string, v sql.NullString) {
			if v.Valid && v.String != "" {
				*dst = v.String
				key.Sources[field] = src
			}
		}
		set("key_spec", &key.Spec, inv.spec)
		set("origin", &key.Origin, inv.origin)
		set("manager", &key.Manager, inv.manager)
		set("description", &key.Description, inv.desc)
		if inv.cks.Valid {
			j.f.CustomKeyStore = inv.cks.String
		}
		if inv.created.Valid {
			key.Created = time.Unix(inv.created.Int64, 0).UTC()
			key.Sources["created"] = src
		}
	}
	for _, e := range j.k.events {
		if e.name == "CreateKey" && e.errCode == "" {
			j.create = e
			break
		}
	}
	if create := j.create; create != nil {
		key.Created, key.CreatedInLogs = create.t(), true
		key.Sources["created"] = "CreateKey event " + create.eventID
		j.ref("created", create)
		if d := create.det; d != nil {
			src := "CreateKey event " + create.eventID
			fill := func(field string, dst *string, v string) {
				if *dst == "" && v != "" {
					*dst = v
					key.Sources[field] = src
				}
			}
			fill("key_spec", &key.Spec, d.KeySpec)
			fill("origin", &key.Origin, d.Origin)
			fill("manager", &key.Manager, d.KeyManager)
			fill("description", &key.Description, d.Description)
			if j.f.CustomKeyStore == "" {
				j.f.CustomKeyStore = d.CustomKeyStore
			}
			// KMS's defaults apply to an accepted CreateKey that named no
			// spec or origin, and a key created by a caller is customer
			// managed.
			fill("key_spec", &key.Spec, "SYMMETRIC_DEFAULT")
			fill("origin", &key.Origin, "AWS_KMS")
			fill("manager", &key.Manager, "CUSTOMER")
		}
	}
	if key.Manager == "" {
		for _, a := range j.k.aliases {
			if strings.HasPrefix(a, "alias/aws/") {
				key.Manager = "AWS"
				key.Sources["manager"] = "alias " + a + " (only AWS managed keys have alias/aws/ aliases)"
				break
			}
		}
	}
}

// replayLifecycle goes through the key's accepted lifecycle events in time
// order and keeps, for each setting, the last event that set it.
func (j *judging) replayLifecycle() {
	f := &j.f
	j.keyEnabled = rules.Unknown
	for _, e := range j.k.events {
		if e.errCode != "" {
			j.key.EventCounts[e.name+" (failed)"]++
			continue
		}
		j.key.EventCounts[e.name]++
		switch e.name {
		case "CreateKey":
			f.RotationEnabled, j.rotAt, j.rotEv = rules.No, e.t(), e
			f.PendingDeletion, j.pendAt, j.pendEv = rules.No, e.t(), e
			j.keyEnabled, j.enAt, j.enEv = rules.Yes, e.t(), e
		case "EnableKeyRotation":
			f.RotationEnabled, j.rotAt, j.rotEv = rules.Yes, e.t(), e
			f.RotationAccepted = true
			j.enableEv = e
			f.RotationPeriod = 365 // KMS's default when the request names no period
			if e.det != nil && e.det.RotationPeriodDays > 0 {
				f.RotationPeriod = e.det.RotationPeriodDays
			}
		case "DisableKeyRotation":
			f.RotationEnabled, j.rotAt, j.rotEv = rules.No, e.t(), e
		case "RotateKey": // the rotation itself (a service event)
			j.rotations++
			j.lastRot = e
			if e.rotationType == "ON_DEMAND" {
				j.lastOnDemand = e
			} else {
				j.lastAuto = e
				// KMS rotates automatically only eligible keys with
				// rotation enabled: the event proves both, at its time.
				f.RotationAccepted = true
				if f.RotationEnabled != rules.Yes {
					j.rotEv = e
				}
				f.RotationEnabled, j.rotAt = rules.Yes, e.t()
			}
		case "RotateKeyOnDemand": // the request; its RotateKey follows
			j.lastRot, j.lastOnDemand = e, e
		case "ImportKeyMaterial":
			j.lastImport = e
			j.materialGone = nil
			if j.key.Origin == "" {
				j.key.Origin = "EXTERNAL"
				j.key.Sources["origin"] = "ImportKeyMaterial accepted (only EXTERNAL keys take imported material), event " + e.eventID
			}
		case "DeleteImportedKeyMaterial", "DeleteExpiredKeyMaterial":
			j.materialGone = e
		case "ScheduleKeyDeletion":
			f.PendingDeletion, j.pendAt, j.pendEv = rules.Yes, e.t(), e
			f.DeletionDate = time.Time{}
			if e.deletionDate != 0 {
				f.DeletionDate = time.Unix(e.deletionDate, 0).UTC()
			}
		case "CancelKeyDeletion":
			f.PendingDeletion, j.pendAt, j.pendEv = rules.No, e.t(), e
			j.keyEnabled, j.enAt, j.enEv = rules.No, e.t(), e // a cancelled deletion leaves the key disabled
		case "DeleteKey":
			j.deleted = e
		case "DisableKey":
			j.keyEnabled, j.enAt, j.enEv = rules.No, e.t(), e
		case "EnableKey":
			j.keyEnabled, j.enAt, j.enEv = rules.Yes, e.t(), e
		}
	}
}

// inventorySnapshot: a snapshot of the inventory inside the period is
// evidence at its time, overriding what events before it set; one taken
// after the period says nothing of the state at its end (only the static
// facts of identity are used).
func (j *judging) inventorySnapshot() {
	inv := j.k.inv
	if inv == nil || inv.asOf >= j.to.Unix() {
		return
	}
	f := &j.f
	at := time.Unix(inv.asOf, 0).UTC()
	j.invSrc = "inventory as of " + report.FormatTime(at)
	if inv.rot.Valid && !at.Before(j.rotAt) {
		f.RotationEnabled, j.rotAt, j.rotEv = rules.TriOf(inv.rot.Int64 == 1), at, nil
		j.key.Sources["rotation_enabled"] = j.invSrc
		if inv.period.Valid && inv.period.Int64 > 0 {
			f.RotationPeriod = int(inv.period.Int64)
		} else if inv.rot.Int64 == 1 && f.RotationPeriod == 0 {
			f.RotationPeriod = 365
		}
	}
	if inv.state.Valid && !at.Before(j.pendAt) {
		f.PendingDeletion, j.pendAt, j.pendEv = rules.TriOf(inv.state.String == "PendingDeletion"), at, nil
		j.key.Sources["pending_deletion"] = j.invSrc
		if inv.deletion.Valid {
			f.DeletionDate = time.Unix(inv.deletion.Int64, 0).UTC()
		}
	}
	if inv.enabled.Valid && !at.Before(j.enAt) {
		j.keyEnabled, j.enAt, j.enEv = rules.TriOf(inv.enabled.Int64 == 1), at, nil
	}
	if inv.state.Valid {
		j.key.State = inv.state.String
		j.key.Sources["state"] = j.invSrc
	}
}

// rotationSetting: the rotation setting is known only if the logs are
// complete since the evidence that set it.
func (j *judging) rotationSetting() {
	f := &j.f
	if f.RotationEnabled != rules.Unknown {
		if j.covered(j.rotAt) {
			if rotEv := j.rotEv; rotEv != nil {
				role := "rotation disabled (default for a new key)"
				switch rotEv.name {
				case "RotateKey":
					role = "automatic rotation (rotation enabled)"
				case "EnableKeyRotation":
					role = "rotation enabled"
				case "DisableKeyRotation":
					role = "rotation disabled"
				}
				j.ref(role, rotEv)
				j.key.Sources["rotation_enabled"] = rotEv.name + " event " + rotEv.eventID
			}
		} else {
			j.b.gapNote(&j.key, "rotation setting", j.rotAt)
			f.RotationEnabled = rules.Unknown
			f.RotationGap = true
			delete(j.key.Sources, "rotation_enabled")
		}
	}
	if f.RotationEnabled == rules.Yes {
		j.key.RotationPeriodDays = f.RotationPeriod
	}
}

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
		if j.covered(born) {
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

// deletion: a deletion status set by an event holds if the logs are
// complete since; logs complete for longer than the longest waiting
// period with no ScheduleKeyDeletion establish "not pending deletion".
func (j *judging) deletion() {
	key, f, cs, to := &j.key, &j.f, j.cs, j.to
	if j.deleted != nil {
		f.Deleted = true
		key.State = "Deleted"
		j.ref("deleted", j.deleted)
	}
	if f.PendingDeletion != rules.Unknown && !j.covered(j.pendAt) {
		j.b.gapNote(key, "deletion status", j.pendAt)
		f.PendingDeletion = rules.Unknown
		f.DeletionGap = true
		delete(key.Sources, "pending_deletion")
	}
	if f.PendingDeletion == rules.Unknown && j.deleted == nil && !cs.After(to.AddDate(0, 0, -maxPendingWindow)) {
		// Complete logs for longer than the longest waiting period, with no
		// deletion scheduled or done: nothing is pending.
		scheduled := false
		for _, e := range j.k.events {
			if e.name == "ScheduleKeyDeletion" && e.errCode == "" && !e.t().Before(cs) {
				scheduled = true
			}
		}
		if !scheduled {
			f.PendingDeletion = rules.No
			key.Sources["pending_deletion"] = fmt.Sprintf("no ScheduleKeyDeletion in %d days of complete logs (longer than the %d-day maximum waiting period)", days(to.Sub(cs)), maxPendingWindow)
		}
	}
	if pendEv := j.pendEv; f.PendingDeletion != rules.Unknown && pendEv != nil && key.Sources["pending_deletion"] == "" {
		key.Sources["pending_deletion"] = pendEv.name + " event " + pendEv.eventID
		if pendEv.name != "CreateKey" {
			j.ref(map[bool]string{true: "deletion scheduled", false: "deletion cancelled"}[f.PendingDeletion == rules.Yes], pendEv)
		}
	}
	if f.PendingDeletion == rules.Yes {
		key.DeletionDate = f.DeletionDate
	}
	key.PendingDeletion = tri(f.PendingDeletion)
	if j.keyEnabled != rules.Unknown && !j.covered(j.enAt) {
		j.keyEnabled = rules.Unknown
	}
}

// state is the key state at the end of the period: what the lifecycle
// establishes, else the inventory's.
func (j *judging) state() {
	key, f := &j.key, &j.f
	invState := key.State
	switch {
	case f.Deleted:
		key.State = "Deleted"
	case f.PendingDeletion == rules.Yes:
		key.State = "PendingDeletion"
	case j.materialGone != nil:
		key.State = "PendingImport"
	case j.keyEnabled == rules.No:
		key.State = "Disabled"
	case j.keyEnabled == rules.Yes:
		key.State = "Enabled"
	case invState != "":
		key.State = invState
	default:
		key.State = "unknown"
	}
	if key.State != invState {
		delete(key.Sources, "state")
	}
}

// importedMaterial: the last import of key material states its expiration
// (and its validity span); without it, an inventory snapshot inside the
// period gives the expiration model but not the import time.
func (j *judging) importedMaterial() {
	key, f, inv := &j.key, &j.f, j.k.inv
	if lastImport := j.lastImport; lastImport != nil {
		j.ref("last import of key material", lastImport)
		f.ImportKnown = true // the import itself states its expiration
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
	} else if inv != nil && inv.asOf < j.to.Unix() && inv.expModel.Valid {
		f.ImportKnown = true
		key.ImportExpirationModel = inv.expModel.String
		f.ImportExpires = rules.TriOf(inv.expModel.String != "KEY_MATERIAL_DOES_NOT_EXPIRE")
		if inv.validTo.Valid {
			key.ImportValidTo = time.Unix(inv.validTo.Int64, 0).UTC()
		}
		f.ImportKnown = false // the import time (and so the validity span) is not in the logs
	}
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

func appendUniq(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// gapNote records why a fact was set back to unknown.
func (b *builder) gapNote(k *Key, what string, since time.Time) {
	k.Sources[strings.ReplaceAll(what, " ", "_")+"_unknown"] = fmt.Sprintf("%s last established %s, but KMS evidence is missing for part of the time since", what, report.FormatTime(since))
}
