package provenance

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// Import is one successful ImportKeyMaterial call and what the join found
// for it.
type Import struct {
	Event  KMSEvent `json:"event"`
	Status Status   `json:"status"`
	// FinalHash names the ceremony that produced the material (Matched,
	// Rehearsal, Mismatch: the one that fits in time); Candidates every
	// ceremony that fits (Ambiguous).
	FinalHash  string   `json:"final_hash,omitempty"`
	CeremonyID string   `json:"ceremony_id,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
	// Parameters is the GetParametersForImport call that issued the
	// parameters the ceremony wrapped for (nil when the logs lack it).
	Parameters *KMSEvent `json:"parameters,omitempty"`
	// Reasons say why each ceremony of the key that does not fit was
	// ruled out, or how a mismatching one differs.
	Reasons []string `json:"reasons,omitempty"`
}

// CeremonyUse is what the logs show of one ceremony's output.
type CeremonyUse struct {
	FinalHash  string   `json:"final_hash"`
	CeremonyID string   `json:"ceremony_id"`
	Resource   string   `json:"resource"` // KMS key or Private CA
	Imports    []string `json:"import_event_ids"`
	Parameters string   `json:"parameters_event_id,omitempty"`
	CSR        string   `json:"csr_event_id,omitempty"`
	// State: imported, or why not (pending, expired, failed, not in logs).
	State string `json:"state"`
}

// CAImport is one successful ImportCertificateAuthorityCertificate call.
type CAImport struct {
	Event      store.PCAEvent `json:"-"`
	EventID    string         `json:"event_id"`
	Time       time.Time      `json:"time"`
	CAARN      string         `json:"ca_arn"`
	Status     Status         `json:"status"`
	FinalHash  string         `json:"final_hash,omitempty"`
	CeremonyID string         `json:"ceremony_id,omitempty"`
	CSREventID string         `json:"csr_event_id,omitempty"`
	Reasons    []string       `json:"reasons,omitempty"`
}

// Result is the join.
type Result struct {
	Imports    []Import      `json:"imports"`
	CAImports  []CAImport    `json:"ca_imports"`
	Ceremonies []CeremonyUse `json:"ceremonies"`
	Findings   []Finding     `json:"findings"`
}

// candidate is one ceremony considered for an import.
type candidate struct {
	c      *store.Ceremony
	params *KMSEvent
	// timeFail says why it cannot be the import's ceremony at all;
	// differs, how it differs from the import when the times fit.
	timeFail string
	differs  []string
}

// Match applies the rule to every import and ceremony.
func Match(cers []store.Ceremony, kms []KMSEvent, pca []store.PCAEvent, o Options) *Result {
	o = o.withDefaults()
	r := &Result{Imports: []Import{}, CAImports: []CAImport{}, Ceremonies: []CeremonyUse{}, Findings: []Finding{}}
	sorted := append([]KMSEvent(nil), kms...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	used := map[string]*CeremonyUse{}
	var order []string
	use := func(c *store.Ceremony, resource string) *CeremonyUse {
		u := used[c.FinalHash]
		if u == nil {
			u = &CeremonyUse{FinalHash: c.FinalHash, CeremonyID: c.CeremonyID, Resource: resource, Imports: []string{}}
			used[c.FinalHash] = u
			order = append(order, c.FinalHash)
		}
		return u
	}
	for i := range cers {
		c := &cers[i]
		if isBYOK(c) && !c.Rehearsal {
			use(c, c.Facts.BYOK.KeyARN)
		}
		if c.Kind == "ca-signing" && c.Facts.Certificate != nil && c.Facts.Certificate.CAARN != "" && !c.Rehearsal {
			use(c, c.Facts.Certificate.CAARN)
		}
	}
	for i := range sorted {
		e := &sorted[i]
		if e.Name != "ImportKeyMaterial" || !e.OK() {
			continue
		}
		imp := matchImport(e, cers, sorted, o)
		if imp.Status == Matched || imp.Status == Mismatch {
			for j := range cers {
				if cers[j].FinalHash == imp.FinalHash && !cers[j].Rehearsal {
					u := use(&cers[j], e.KeyARN)
					u.Imports = append(u.Imports, e.EventID)
					if imp.Parameters != nil {
						u.Parameters = imp.Parameters.EventID
					}
				}
			}
		}
		r.Imports = append(r.Imports, imp)
		r.Findings = append(r.Findings, importFindings(&imp)...)
	}
	for i := range cers {
		c := &cers[i]
		if !isBYOK(c) || c.Rehearsal {
			continue
		}
		u := used[c.FinalHash]
		if len(u.Imports) > 0 {
			u.State = "imported"
			continue
		}
		f := notImported(c, u, sorted, o)
		r.Findings = append(r.Findings, f)
	}
	r.Findings = append(r.Findings, materialFindings(r.Imports, sorted, o)...)
	matchCA(r, cers, pca, o, use, used)
	for _, h := range order {
		r.Ceremonies = append(r.Ceremonies, *used[h])
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		if r.Findings[i].Resource != r.Findings[j].Resource {
			return r.Findings[i].Resource < r.Findings[j].Resource
		}
		return r.Findings[i].Time.Before(r.Findings[j].Time)
	})
	return r
}

// matchImport finds the ceremony of one successful import.
func matchImport(e *KMSEvent, cers []store.Ceremony, evs []KMSEvent, o Options) Import {
	imp := Import{Event: *e, Status: Unmatched}
	var fit, differ, rehearsal []candidate
	for i := range cers {
		c := &cers[i]
		if !isBYOK(c) || !SameKey(c.Facts.BYOK.KeyARN, e.KeyARN) {
			continue
		}
		cd := judge(e, c, evs, o)
		switch {
		case cd.timeFail != "":
			imp.Reasons = append(imp.Reasons, fmt.Sprintf("ceremony %s (%s): %s", c.CeremonyID, short(c.FinalHash), cd.timeFail))
		case len(cd.differs) > 0:
			differ = append(differ, cd)
		case c.Rehearsal:
			rehearsal = append(rehearsal, cd)
		default:
			fit = append(fit, cd)
		}
	}
	// Two ceremonies that both fit (the same parameters wrapped twice):
	// the KeyMaterialId `aws byok import` recorded beside one of them
	// decides, when CloudTrail states it too.
	if len(fit) > 1 && e.KeyMaterialID != "" {
		var same []candidate
		for _, cd := range fit {
			if in := cd.c.Facts.BYOK.Import; in != nil && in.KeyMaterialID == e.KeyMaterialID {
				same = append(same, cd)
			}
		}
		if len(same) == 1 {
			fit = same
		}
	}
	set := func(cd candidate, s Status) {
		imp.Status, imp.FinalHash, imp.CeremonyID, imp.Parameters = s, cd.c.FinalHash, cd.c.CeremonyID, cd.params
	}
	switch {
	case len(fit) == 1:
		set(fit[0], Matched)
	case len(fit) > 1:
		imp.Status = Ambiguous
		for _, cd := range fit {
			imp.Candidates = append(imp.Candidates, cd.c.FinalHash)
		}
		imp.Parameters = fit[0].params
	case len(differ) > 0:
		set(differ[0], Mismatch)
		for _, cd := range differ {
			imp.Reasons = append(imp.Reasons, fmt.Sprintf("ceremony %s (%s) fits in time but %s", cd.c.CeremonyID, short(cd.c.FinalHash), strings.Join(cd.differs, "; ")))
		}
	case len(rehearsal) > 0:
		set(rehearsal[0], Rehearsal)
	}
	return imp
}

// judge checks one ceremony against one import: the parameters call that
// issued what it wrapped, the time order, then what it wrapped.
func judge(e *KMSEvent, c *store.Ceremony, evs []KMSEvent, o Options) candidate {
	b := c.Facts.BYOK
	cd := candidate{c: c}
	// The GetParametersForImport call that issued the ceremony's
	// parameters: on the same key, 24 hours before their expiry.
	issued := b.ParametersValidTo.Add(-ParametersLifetime)
	for i := range evs {
		p := &evs[i]
		if p.Name != "GetParametersForImport" || !p.OK() || !SameKey(p.KeyARN, e.KeyARN) {
			continue
		}
		if d := p.Time.Sub(issued); d <= o.ParametersTolerance && d >= -o.ParametersTolerance {
			if cd.params == nil || absDur(p.Time.Sub(issued)) < absDur(cd.params.Time.Sub(issued)) {
				cd.params = p
			}
		}
	}
	// AWS refuses an import token after its expiry: an import later than
	// the parameters cannot carry this ceremony's material.
	if e.Time.After(b.ParametersValidTo.Add(time.Second)) {
		cd.timeFail = fmt.Sprintf("its parameters expired at %s, before the import", fmtTime(b.ParametersValidTo))
		return cd
	}
	// The laptop's clock may be off by Skew.
	if c.Ended.After(e.Time.Add(o.Skew)) {
		cd.timeFail = fmt.Sprintf("it ended at %s (laptop clock), after the import (allowing %s of clock difference)", fmtTime(c.Ended), o.Skew)
		return cd
	}
	if cd.params != nil && cd.params.Time.After(c.Started.Add(o.Skew)) {
		cd.timeFail = fmt.Sprintf("its parameters were requested at %s, after it started at %s", fmtTime(cd.params.Time), fmtTime(c.Started))
		return cd
	}
	if p := cd.params; p != nil {
		if p.WrappingAlgorithm != "" && p.WrappingAlgorithm != b.WrappingAlgorithm {
			cd.differs = append(cd.differs, fmt.Sprintf("the parameters were requested for %s, the ceremony wrapped with %s", p.WrappingAlgorithm, b.WrappingAlgorithm))
		}
		if p.WrappingKeySpec != "" && p.WrappingKeySpec != b.WrappingKeySpec {
			cd.differs = append(cd.differs, fmt.Sprintf("the parameters were requested with an %s wrapping key, the ceremony's was %s", p.WrappingKeySpec, b.WrappingKeySpec))
		}
	}
	if e.ExpirationModel != "" && e.ExpirationModel != b.ExpirationModel {
		cd.differs = append(cd.differs, fmt.Sprintf("the import's expiration model is %s, the ceremony's %s", e.ExpirationModel, b.ExpirationModel))
	}
	if b.ExpirationModel == "KEY_MATERIAL_EXPIRES" && !e.ValidTo.Equal(b.MaterialValidTo) {
		cd.differs = append(cd.differs, fmt.Sprintf("the import's validTo is %s, the ceremony's %s", orNone(fmtTime(e.ValidTo)), fmtTime(b.MaterialValidTo)))
	}
	if e.ImportType != b.ImportType {
		cd.differs = append(cd.differs, fmt.Sprintf("the import type is %s, the ceremony's %s", orNone(e.ImportType), orNone(b.ImportType)))
	}
	if in := b.Import; in != nil && in.KeyMaterialID != "" && e.KeyMaterialID != "" && in.KeyMaterialID != e.KeyMaterialID {
		cd.differs = append(cd.differs, fmt.Sprintf("it imported key material %s, the ceremony's import recorded %s", e.KeyMaterialID, in.KeyMaterialID))
	}
	return cd
}

func importFindings(imp *Import) []Finding {
	e := &imp.Event
	f := Finding{Resource: e.KeyARN, Time: e.Time, EventIDs: []string{e.EventID}, FinalHashes: []string{}}
	if imp.Parameters != nil {
		f.EventIDs = append([]string{imp.Parameters.EventID}, f.EventIDs...)
	}
	switch imp.Status {
	case Matched:
		if imp.Parameters == nil {
			f.ID, f.Severity, f.FinalHashes = FindingParamsNotInLogs, Info, []string{imp.FinalHash}
			f.Text = fmt.Sprintf("The import matches ceremony %s, but the GetParametersForImport call that issued its parameters is not in the logs (a coverage gap before the ceremony?).", imp.CeremonyID)
			return []Finding{f}
		}
		return nil
	case Ambiguous:
		f.ID, f.Severity, f.FinalHashes = FindingAmbiguous, Medium, imp.Candidates
		f.Text = fmt.Sprintf("Material imported at %s fits %d ceremonies equally (the same import parameters were wrapped more than once) and nothing recorded tells which one was imported.", fmtTime(e.Time), len(imp.Candidates))
	case Mismatch:
		f.ID, f.Severity, f.FinalHashes = FindingDiffers, High, []string{imp.FinalHash}
		f.Text = fmt.Sprintf("Material imported at %s differs from what ceremony %s wrapped: %s.", fmtTime(e.Time), imp.CeremonyID, strings.Join(imp.Reasons, "; "))
	case Rehearsal:
		f.ID, f.Severity, f.FinalHashes = FindingRehearsal, High, []string{imp.FinalHash}
		f.Text = fmt.Sprintf("The only ceremony that fits the import at %s is a REHEARSAL (%s): a rehearsal's outputs are not for production, and its transcript is no evidence of a witnessed ceremony.", fmtTime(e.Time), imp.CeremonyID)
	case Unmatched:
		f.ID, f.Severity = FindingNoCeremony, High
		f.Text = fmt.Sprintf("Key material was imported at %s by %s with no ceremony record.", fmtTime(e.Time), orNone(e.Principal))
		if len(imp.Reasons) > 0 {
			f.Text += " Ruled out: " + strings.Join(imp.Reasons, "; ") + "."
		}
	}
	return []Finding{f}
}

// notImported says why a byok-wrap ceremony's import does not appear.
func notImported(c *store.Ceremony, u *CeremonyUse, evs []KMSEvent, o Options) Finding {
	b := c.Facts.BYOK
	f := Finding{ID: FindingNotImported, Severity: Medium, Resource: b.KeyARN, Time: c.Ended, EventIDs: []string{}, FinalHashes: []string{c.FinalHash}}
	var failed []string
	for i := range evs {
		e := &evs[i]
		if e.Name == "ImportKeyMaterial" && !e.OK() && SameKey(e.KeyARN, b.KeyARN) &&
			!e.Time.Before(c.Started.Add(-o.Skew)) && !e.Time.After(b.ParametersValidTo.Add(time.Second)) {
			failed = append(failed, e.ErrorCode)
			f.EventIDs = append(f.EventIDs, e.EventID)
		}
	}
	covered := o.Covered == nil || o.Covered(b.KeyARN, c.Started.Add(-o.Skew), minTime(b.ParametersValidTo, o.AsOf))
	switch {
	case len(failed) > 0:
		u.State = "import failed"
		f.Text = fmt.Sprintf("Ceremony %s wrapped material for this key, but its import failed (%s) and no import succeeded before its parameters expired at %s.", c.CeremonyID, strings.Join(failed, ", "), fmtTime(b.ParametersValidTo))
	case !o.AsOf.IsZero() && b.ParametersValidTo.After(o.AsOf):
		u.State, f.Severity = "pending", Info
		f.Text = fmt.Sprintf("Ceremony %s wrapped material for this key; its parameters are valid until %s, after the report period: the import may still come.", c.CeremonyID, fmtTime(b.ParametersValidTo))
	case !covered:
		u.State = "not in the logs"
		f.Text = fmt.Sprintf("Ceremony %s wrapped material for this key; no import appears, but the logs between the ceremony and the parameters' expiry (%s) are incomplete: ingest them.", c.CeremonyID, fmtTime(b.ParametersValidTo))
	default:
		u.State = "parameters expired"
		f.Text = fmt.Sprintf("Ceremony %s wrapped material for this key, but no import appears in complete logs before its parameters expired at %s: the material was never imported.", c.CeremonyID, fmtTime(b.ParametersValidTo))
	}
	if in := b.Import; in != nil {
		f.Severity = High
		f.ID = FindingImportNotInLogs
		f.Text += fmt.Sprintf(" Yet `aws byok import` recorded an import at %s (request %s, key material %s) beside the ceremony's files.", fmtTime(in.ImportedAt), orNone(in.RequestID), orNone(in.KeyMaterialID))
	}
	return f
}

// materialFindings: per key, imported material that expires soon or has
// expired, and material deleted.
func materialFindings(imps []Import, evs []KMSEvent, o Options) []Finding {
	var out []Finding
	last := map[string]*Import{}
	for i := range imps {
		last[keyID(imps[i].Event.KeyARN)] = &imps[i]
	}
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		imp := last[k]
		e := imp.Event
		if e.ValidTo.IsZero() || o.AsOf.IsZero() {
			continue
		}
		hashes := []string{}
		if imp.FinalHash != "" {
			hashes = []string{imp.FinalHash}
		}
		switch {
		case !e.ValidTo.After(o.AsOf):
			out = append(out, Finding{ID: FindingExpired, Severity: Medium, Resource: e.KeyARN, Time: e.ValidTo, EventIDs: []string{e.EventID}, FinalHashes: hashes,
				Text: fmt.Sprintf("The material imported at %s expired at %s: the key cannot be used until material is imported again.", fmtTime(e.Time), fmtTime(e.ValidTo))})
		case e.ValidTo.Before(o.AsOf.Add(o.ExpiryWarn)):
			out = append(out, Finding{ID: FindingExpiring, Severity: Medium, Resource: e.KeyARN, Time: e.ValidTo, EventIDs: []string{e.EventID}, FinalHashes: hashes,
				Text: fmt.Sprintf("The material imported at %s expires at %s, within %d days of the end of the period: plan the next ceremony (parameters are valid 24 hours).", fmtTime(e.Time), fmtTime(e.ValidTo), int(o.ExpiryWarn.Hours()/24))})
		}
	}
	for i := range evs {
		e := &evs[i]
		if (e.Name == "DeleteImportedKeyMaterial" || e.Name == "DeleteExpiredKeyMaterial") && e.OK() {
			out = append(out, Finding{ID: FindingDeleted, Severity: Info, Resource: e.KeyARN, Time: e.Time, EventIDs: []string{e.EventID}, FinalHashes: []string{},
				Text: fmt.Sprintf("Imported key material was deleted at %s (%s, by %s).", fmtTime(e.Time), e.Name, orNone(e.Principal))})
		}
	}
	return out
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func minTime(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}
