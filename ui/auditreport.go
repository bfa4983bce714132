package ui

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/keyprov"
	"github.com/keyceremony/keyceremony/audit/report/rotation"
	"github.com/keyceremony/keyceremony/audit/report/rules"
	"github.com/keyceremony/keyceremony/audit/report/usage"
)

func (p *AuditPage) reportButtons() fyne.CanvasObject {
	rot := widget.NewButtonWithIcon("Rotation report…", theme.DocumentSaveIcon(), func() { p.askReport("rotation") })
	use := widget.NewButtonWithIcon("Usage report…", theme.DocumentSaveIcon(), func() { p.askReport("usage") })
	p.reports = widget.NewEntry()
	p.reports.SetPlaceHolder("folder for the reports (empty: ask where)")
	return container.NewBorder(nil, nil, widget.NewLabel("Reports for the period and account/region/key filters above:"), container.NewHBox(rot, use), p.reports)
}

// askReport writes a report into the folder typed beside the buttons as
// KIND-report.pdf (with .csv and .json), or asks where with a dialog.
func (p *AuditPage) askReport(kind string) {
	if dir := strings.TrimSpace(p.reports.Text); dir != "" {
		p.Report(kind, filepath.Join(dir, kind+"-report.pdf"))
		return
	}
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			return
		}
		path := w.URI().Path()
		w.Close()
		_ = removeFile(path) // the report writer creates it itself, never overwriting
		p.Report(kind, path)
	}, p.win)
	d.SetFileName(kind + "-report.pdf")
	d.Show()
}

// reportScope is the report's scope from the filters: the period, account,
// region and key. (Principal, alias and event filters do not narrow reports.)
func (p *AuditPage) reportScope() (report.Scope, error) {
	f, err := p.Filter()
	if err != nil {
		return report.Scope{}, err
	}
	sc := report.Scope{From: f.From, To: f.To, Account: f.Account, Region: f.Region, KeyARN: f.KeyARN}
	if err := sc.Validate(); err != nil {
		return sc, fmt.Errorf("%v: fill in From and To above", err)
	}
	return sc, nil
}

// Report builds a rotation, usage or key provenance report in the background and writes the
// PDF to pdfPath, with the CSV and JSON of the same data beside it.
func (p *AuditPage) Report(kind, pdfPath string) {
	st := p.Store()
	sc, err := p.reportScope()
	if st == nil || err != nil {
		if err != nil {
			p.status.SetText("Report: " + err.Error())
		}
		return
	}
	base := strings.TrimSuffix(pdfPath, ".pdf")
	outs := []string{base + ".pdf", base + ".csv", base + ".json"}
	for _, o := range outs {
		if err := report.CheckOutput(o, false); err != nil {
			p.status.SetText("Report: " + err.Error())
			return
		}
	}
	s := p.settings
	bs, be := s.BusinessHours()
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	p.progress.SetValue(0)
	p.progress.Show()
	p.stopBtn.Show()
	p.setTitle("writing the " + kind + " report")
	progress := func(pr report.Progress) {
		fyne.Do(func() {
			if pr.Steps > 0 {
				p.progress.SetValue(float64(pr.Step) / float64(pr.Steps))
			}
			p.status.SetText(fmt.Sprintf("%s report: %s", kind, pr.Stage))
		})
	}
	go func() {
		var writers [3]func(io.Writer) error
		var meta report.Meta
		var err error
		switch kind {
		case "rotation":
			var rep *rotation.Report
			rep, err = rotation.Build(ctx, st, rotation.Options{Scope: sc, Progress: progress, Generator: "Key Ceremony GUI",
				Policy: rules.Policy{RotationDays: s.RotationPolicyDays()}})
			if err == nil {
				writers, meta = [3]func(io.Writer) error{rep.WritePDF, rep.WriteCSV, rep.WriteJSON}, rep.Meta
			}
		case "provenance":
			var rep *keyprov.Report
			rep, err = keyprov.Build(ctx, st, keyprov.Options{Scope: sc, Progress: progress, Generator: "Key Ceremony GUI"})
			if err == nil {
				writers, meta = [3]func(io.Writer) error{rep.WritePDF, rep.WriteCSV, rep.WriteJSON}, rep.Meta
			}
		default:
			var rep *usage.Report
			rep, err = usage.Build(ctx, st, usage.Options{Scope: sc, Progress: progress, Generator: "Key Ceremony GUI",
				BusinessHours: usage.BusinessHours{Zone: "UTC", StartHour: bs, EndHour: be}, TopN: 10})
			if err == nil {
				writers, meta = [3]func(io.Writer) error{rep.WritePDF, rep.WriteCSV, rep.WriteJSON}, rep.Meta
			}
		}
		for i := 0; err == nil && i < 3; i++ {
			err = report.WriteFile(outs[i], false, writers[i])
		}
		fyne.Do(func() {
			p.progress.Hide()
			p.stopBtn.Hide()
			if err != nil {
				p.status.SetText(kind + " report failed: " + err.Error())
				p.setTitle(kind + " report failed")
				return
			}
			// What the cover says limits the evidence, here too.
			p.status.SetText(fmt.Sprintf("Wrote %s (and the same data as %s, %s).\nCoverage %s.\nIngest runs: %s.",
				outs[0], outs[1], outs[2], meta.Coverage.Statement, meta.Provenance.Ingest.Statement))
			p.setTitle("wrote the " + kind + " report")
		})
	}()
}
