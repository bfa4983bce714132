package provenance

import (
	"fmt"
	"sort"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/store"
)

// matchCA joins AWS Private CA certificate installations to ca-signing
// ceremonies. CloudTrail records the CA and the time of the call, and of
// the certificate only the length of the PEM sent (not its bytes, serial
// or fingerprint): an installation matches the latest ca-signing ceremony
// for the same CA that ended before it (allowing the clock difference),
// and the PEM's length, when CloudTrail states it, must be the length of
// the certificate file the ceremony wrote.
func matchCA(r *Result, cers []store.Ceremony, pca []store.PCAEvent, o Options,
	use func(*store.Ceremony, string) *CeremonyUse, used map[string]*CeremonyUse) {
	evs := append([]store.PCAEvent(nil), pca...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	for i := range evs {
		e := &evs[i]
		if e.Name != "ImportCertificateAuthorityCertificate" || e.ErrorCode != "" {
			continue
		}
		imp := CAImport{Event: *e, EventID: e.EventID, Time: e.Time, CAARN: e.CAARN, Status: Unmatched}
		var best, rehearsal *store.Ceremony
		for j := range cers {
			c := &cers[j]
			x := c.Facts.Certificate
			if c.Kind != "ca-signing" || x == nil || x.CAARN != e.CAARN {
				continue
			}
			if c.Ended.After(e.Time.Add(o.Skew)) {
				imp.Reasons = append(imp.Reasons, fmt.Sprintf("ceremony %s (%s) ended at %s (laptop clock), after the installation", c.CeremonyID, short(c.FinalHash), fmtTime(c.Ended)))
				continue
			}
			if c.Rehearsal {
				rehearsal = c
				continue
			}
			if best == nil || c.Ended.After(best.Ended) {
				best = c
			}
		}
		f := Finding{Resource: e.CAARN, Time: e.Time, EventIDs: []string{e.EventID}, FinalHashes: []string{}}
		switch {
		case best != nil:
			imp.Status, imp.FinalHash, imp.CeremonyID = Matched, best.FinalHash, best.CeremonyID
			if n := cloudtrail.PCACertificateLength([]byte(e.Raw)); n > 0 && best.Facts.Certificate.Size > 0 && n != best.Facts.Certificate.Size {
				imp.Status = Mismatch
				imp.Reasons = append(imp.Reasons, fmt.Sprintf("CloudTrail records a %d-byte certificate; ceremony %s wrote %s of %d bytes", n, best.CeremonyID, best.Facts.Certificate.File, best.Facts.Certificate.Size))
				f.ID, f.Severity, f.FinalHashes = FindingCADiffers, High, []string{best.FinalHash}
				f.Text = fmt.Sprintf("The CA certificate installed at %s is not the one ceremony %s signed: %s.", fmtTime(e.Time), best.CeremonyID, imp.Reasons[len(imp.Reasons)-1])
				r.Findings = append(r.Findings, f)
			}
			// The CSR the ceremony signed was fetched before it started.
			for k := len(evs) - 1; k >= 0; k-- {
				p := &evs[k]
				if p.Name == "GetCertificateAuthorityCsr" && p.ErrorCode == "" && p.CAARN == e.CAARN && !p.Time.After(best.Started.Add(o.Skew)) {
					imp.CSREventID = p.EventID
					break
				}
			}
			u := use(best, e.CAARN)
			u.Imports = append(u.Imports, e.EventID)
			u.CSR = imp.CSREventID
		case rehearsal != nil:
			imp.Status, imp.FinalHash, imp.CeremonyID = Rehearsal, rehearsal.FinalHash, rehearsal.CeremonyID
			f.ID, f.Severity, f.FinalHashes = FindingRehearsal, High, []string{rehearsal.FinalHash}
			f.Text = fmt.Sprintf("The only ca-signing ceremony for this CA before the installation at %s is a REHEARSAL (%s).", fmtTime(e.Time), rehearsal.CeremonyID)
			r.Findings = append(r.Findings, f)
		default:
			f.ID, f.Severity = FindingCANoCeremony, High
			f.Text = fmt.Sprintf("A CA certificate was installed at %s by %s with no ca-signing ceremony record for this CA.", fmtTime(e.Time), orNone(e.Principal))
			r.Findings = append(r.Findings, f)
		}
		r.CAImports = append(r.CAImports, imp)
	}
	for j := range cers {
		c := &cers[j]
		x := c.Facts.Certificate
		if c.Kind != "ca-signing" || c.Rehearsal || x == nil || x.CAARN == "" {
			continue
		}
		u := used[c.FinalHash]
		if len(u.Imports) > 0 {
			u.State = "imported"
			continue
		}
		u.State = "not in the logs"
		r.Findings = append(r.Findings, Finding{ID: FindingCANotImported, Severity: Info, Resource: x.CAARN, Time: c.Ended, EventIDs: []string{}, FinalHashes: []string{c.FinalHash},
			Text: fmt.Sprintf("Ceremony %s signed a certificate for this CA (SHA-256 %s); no installation of it appears in the logs ingested.", c.CeremonyID, x.SHA256)})
	}
}
