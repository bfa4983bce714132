package ui

import (
	"bytes"
	"encoding/json"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/keyprov"
)

// The rows of the key provenance view: a timeline item, a ceremony, a
// finding, laid out from keyprov's model.

// timelineRow is one event or ceremony: what, when, its status, and the
// button to its evidence.
func (kv *keyView) timelineRow(t keyprov.TimelineItem) fyne.CanvasObject {
	when := widget.NewLabel(report.FormatTime(t.Time))
	when.TextStyle = fyne.TextStyle{Monospace: true}
	status := widget.NewLabel(t.Status)
	status.Importance = statusImportance(t.Status)
	var btn *scriptButton
	var body []fyne.CanvasObject
	if t.Kind == "ceremony" {
		c, ok := kv.rep.Ceremony(t.FinalHash)
		btn = kv.button("Open transcript", theme.DocumentIcon(), func() { kv.openTranscript(c) })
		if !ok {
			btn.Disable()
			body = append(body, wrapLabel(t.Detail))
		} else {
			body = append(body, ceremonyForm(c))
		}
	} else {
		btn = kv.button("CloudTrail record", theme.FileTextIcon(), func() { kv.showRecord(t) })
		detail := t.Detail
		if t.Principal != "" {
			detail = strings.TrimPrefix(detail+"; by "+t.Principal, "; ")
		}
		if detail != "" {
			body = append(body, wrapLabel(detail))
		}
		if t.Error != "" {
			failed := wrapLabel("FAILED: " + t.Error)
			failed.Importance = widget.DangerImportance
			body = append(body, failed)
		}
	}
	head := container.NewBorder(nil, nil, container.NewHBox(when, boldLabel(t.What), status), btn)
	rows := append([]fyne.CanvasObject{head}, body...)
	return container.NewVBox(append(rows, widget.NewSeparator())...)
}

// ceremonyForm states a ceremony as the report does: when, who, the final
// hash as hex and words, what it produced, what the logs show of it.
func ceremonyForm(c *keyprov.Ceremony) fyne.CanvasObject {
	hash := widget.NewLabel(c.FinalHash)
	hash.TextStyle = fyne.TextStyle{Monospace: true}
	hash.Selectable = true
	form := widget.NewForm(
		widget.NewFormItem("Held", widget.NewLabel(report.FormatTime(c.Started)+" to "+report.FormatTime(c.Ended)+" (laptop clock)")),
		widget.NewFormItem("Participants", wrapLabel(strings.Join(c.Participants, ", "))),
		widget.NewFormItem("Final hash", hash),
		widget.NewFormItem("Final hash words", wrapLabel(c.FinalWords)),
	)
	for _, kv := range c.Produced {
		v := wrapLabel(kv[1])
		v.Wrapping = fyne.TextWrapBreak
		form.Append(kv[0], v)
	}
	if c.Rehearsal {
		r := widget.NewLabel("REHEARSAL: not evidence")
		r.Importance = widget.DangerImportance
		form.Append("Rehearsal", r)
	}
	return form
}

func findingRow(f provenance.Finding) fyne.CanvasObject {
	sev := widget.NewLabel(strings.ToUpper(string(f.Severity)))
	switch f.Severity {
	case provenance.High:
		sev.Importance = widget.DangerImportance
	case provenance.Medium:
		sev.Importance = widget.WarningImportance
	}
	when := widget.NewLabel(report.FormatTime(f.Time))
	when.TextStyle = fyne.TextStyle{Monospace: true}
	rows := []fyne.CanvasObject{container.NewHBox(sev, boldLabel(f.ID), when), wrapLabel(f.Text)}
	var ev []string
	if len(f.EventIDs) > 0 {
		ev = append(ev, "CloudTrail events: "+strings.Join(f.EventIDs, " "))
	}
	if len(f.FinalHashes) > 0 {
		ev = append(ev, "Transcripts (final hash): "+strings.Join(f.FinalHashes, " "))
	}
	if len(ev) > 0 {
		l := wrapLabel(strings.Join(ev, "\n"))
		l.TextStyle = fyne.TextStyle{Monospace: true}
		l.Wrapping = fyne.TextWrapBreak
		rows = append(rows, l)
	}
	return container.NewVBox(append(rows, widget.NewSeparator())...)
}

func subheading(text string) *widget.Label {
	l := boldLabel(text)
	l.SizeName = theme.SizeNameSubHeadingText
	return l
}

// resourceID is the part of an ARN after the resource type: a key's id,
// a CA's id.
func resourceID(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// sectionImportance colours a key or CA by its worst finding.
func sectionImportance(s *keyprov.Section) widget.Importance {
	imp := widget.SuccessImportance
	for _, f := range s.Findings {
		switch f.Severity {
		case provenance.High:
			return widget.DangerImportance
		case provenance.Medium:
			imp = widget.WarningImportance
		}
	}
	return imp
}

// statusImportance colours an import's status or a ceremony's state.
func statusImportance(status string) widget.Importance {
	switch status {
	case "":
		return widget.MediumImportance
	case string(provenance.Matched), "imported":
		return widget.SuccessImportance
	case "pending":
		return widget.WarningImportance
	}
	return widget.DangerImportance
}

// indentedJSON shows a record as people read it (as it is when it is not JSON).
func indentedJSON(raw []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") == nil {
		return b.String()
	}
	return string(raw)
}
