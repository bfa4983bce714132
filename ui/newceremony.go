package ui

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

// The Ceremonies page's script authoring: a new script from a form, saving
// it, the review (its plan and SHA-256 as hex and words), and opening an
// existing script in the form when the form can write it back unchanged.

// formKinds are the kinds the "New ceremony script" page offers, in order.
var formKinds = []script.Kind{script.RootGeneration, script.KeyBackup, script.KeyRestore, script.CASigning, script.CRLIssuance, script.BYOKWrap}

// setTitle names the screen in the window title, so a screen reader, the
// taskbar and a keyboard-driven test know where the user is.
func setTitle(win fyne.Window, what string) {
	if what == "" {
		win.SetTitle("Key Ceremony")
		return
	}
	win.SetTitle("Key Ceremony — " + what)
}

func (p *CeremoniesPage) showKinds() {
	p.form = nil
	var buttons []fyne.CanvasObject
	var first *widget.Button
	for _, k := range formKinds {
		k := k
		b := widget.NewButton(string(k), func() { p.NewScript(k) })
		b.Alignment = widget.ButtonAlignLeading
		if first == nil {
			first = b
		}
		buttons = append(buttons, container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSize(200, b.MinSize().Height), b), nil, wrapLabel(kindTitles[k])))
	}
	intro := wrapLabel("Choose the kind of ceremony. The form asks for everything the script language has for that kind, checks it as you type, and writes a commented YAML script to review; nothing needs an editor.")
	back := widget.NewButton("Back", p.showStart)
	p.screen("New ceremony script", container.NewBorder(container.NewVBox(heading("New ceremony script"), intro), container.NewHBox(back), nil, nil,
		container.NewVScroll(container.NewVBox(buttons...))))
	p.win.Canvas().Focus(first)
}

// NewScript opens the form for a new script of kind k, with safe defaults.
func (p *CeremoniesPage) NewScript(k script.Kind) *ScriptForm {
	f := NewScriptForm(p.win, p.settings, k)
	f.Load(defaultScript(k, p.settings.Module()))
	p.showForm(f, "New "+string(k)+" script")
	return f
}

// NewKind opens the form for a new script of the kind named, or says which
// kinds there are.
func (p *CeremoniesPage) NewKind(name string) {
	k := script.Kind(name)
	if !containsKind(formKinds, k) {
		dialog.ShowError(fmt.Errorf("no ceremony kind %q (one of %s)", name, kindNames()), p.win)
		return
	}
	p.NewScript(k)
}

// NewScriptFrom opens the form for a new script with values already filled
// in (the BYOK page's parameters).
func (p *CeremoniesPage) NewScriptFrom(s *script.Script) *ScriptForm {
	f := NewScriptForm(p.win, p.settings, s.Kind)
	f.Load(s)
	p.showForm(f, "New "+string(s.Kind)+" script")
	return f
}

// Form is the script form on screen, if any.
func (p *CeremoniesPage) Form() *ScriptForm { return p.form }

// defaultScript is where a new script starts: nothing runs on the host that
// could run in the token (allow_host_steps false), no key backup, the air
// gap blocking, shares on card and file, the module chosen in Settings.
func defaultScript(k script.Kind, module string) *script.Script {
	s := newSections(k)
	s.Token.Module = module
	if module == "" {
		s.Token.Module, _ = softhsm.ModulePath()
	}
	s.Preflight.AirGap = "block"
	s.Participants = []script.Participant{{Role: script.Administrator}, {Role: script.Witness}}
	s.Token.Enrol = script.EnrolQuorum
	if !k.UsesQuorumRecord() || k == script.KeyRestore {
		s.Token.Enrol = script.EnrolInitialize
	}
	if k.UsesQuorumRecord() {
		s.Quorum.Record = &script.Input{}
	} else {
		s.Participants = append(s.Participants, script.Participant{Role: script.Custodian}, script.Participant{Role: script.Custodian}, script.Participant{Role: script.Custodian})
		s.Quorum.Delivery = []string{"card", "file"}
	}
	zero, none := 0, -1
	switch k {
	case script.RootGeneration:
		s.Key.Type = "ec-p384"
		today := time.Now().UTC().Truncate(24 * time.Hour)
		s.Certificate.NotBefore, s.Certificate.NotAfter = today, today.AddDate(20, 0, 0).Add(-time.Second)
		s.Certificate.MaxPathLength = &none
		s.Output.Directory = "ceremony-output"
	case script.KeyBackup:
		s.Output.Directory = "backup-output"
	case script.KeyRestore:
		s.Output.Directory = "restore-output"
	case script.CASigning:
		s.Signing.Subordinate = &script.Subordinate{Profile: script.CAProfile{MaxPathLength: &zero}}
		s.Output.Directory = "signing-output"
	case script.CRLIssuance:
		s.Signing.CRL.NextUpdateDays = 365
		s.Output.Directory = "crl-output"
	case script.BYOKWrap:
		s.BYOK.Parameters = &script.Input{}
		s.BYOK.Key.Source = script.KeyGenerate
		s.Output.Directory = "byok-output"
	}
	return s
}

// showForm puts a script form on screen with Save (Ctrl+S) and Back.
func (p *CeremoniesPage) showForm(f *ScriptForm, title string) {
	p.form = f
	save := widget.NewButtonWithIcon("Save and review (Ctrl+S)", theme.DocumentSaveIcon(), func() { p.saveForm(f) })
	save.Importance = widget.HighImportance
	f.OnSave = func() { p.saveForm(f) }
	f.SetActions(save, widget.NewButton("Back to ceremonies", p.showStart))
	p.screen(title, container.NewBorder(heading(title), nil, nil, nil, f))
	p.win.Canvas().AddShortcut(saveShortcut, func(fyne.Shortcut) {
		if p.form == f && f.OnSave != nil {
			f.OnSave()
		}
	})
	f.FocusFirst()
}

// saveForm writes the form's script where its Save as field says, then
// shows the review of the file as written.
func (p *CeremoniesPage) saveForm(f *ScriptForm) {
	path := f.Path()
	if path == "" {
		dialog.ShowInformation("Where to save the script?", "Fill in \"Save as\" at the top of the form: the path of the script file.", p.win)
		f.FocusFirst()
		return
	}
	data, err := f.YAML()
	if err != nil {
		dialog.ShowError(err, p.win)
		return
	}
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		p.showReview(f, path)
	case err == nil:
		dialog.ShowConfirm("Replace the script?", path+" exists and differs from the form. A reviewed copy must be reviewed again once replaced. Replace it?", func(ok bool) {
			if ok {
				p.writeAndReview(f, path, data)
			}
		}, p.win)
	default:
		p.writeAndReview(f, path, data)
	}
}

func (p *CeremoniesPage) writeAndReview(f *ScriptForm, path string, data []byte) {
	if err := writeFileAtomic(path, data); err != nil {
		dialog.ShowError(fmt.Errorf("save the script: %w", err), p.win)
		return
	}
	p.showReview(f, path)
}

// writeFileAtomic writes data to path (0600) through a temporary file in the
// same directory, synced and renamed into place: a crash leaves either the
// old file or the new one, never half of one.
func writeFileAtomic(path string, data []byte) error {
	return report.WriteFile(path, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// showReview reads the saved file back and shows what a reviewer checks:
// its SHA-256 as hex and words, whether it validates, what the engine finds
// before the ceremony (inputs present and as pinned), and the plan.
func (p *CeremoniesPage) showReview(f *ScriptForm, path string) {
	p.form = nil
	raw, err := os.ReadFile(path)
	if err != nil {
		dialog.ShowError(err, p.win)
		return
	}
	sum := sha256Sum(raw)
	facts := widget.NewForm(
		widget.NewFormItem("Script", wrapLabel(path)),
		widget.NewFormItem("SHA-256", selectableLabel(hex.EncodeToString(sum))),
		widget.NewFormItem("Read aloud", selectableLabel(strings.Join(words.Lines(sum, 8), "\n"))),
	)
	var status []fyne.CanvasObject
	plan := container.NewVBox()
	s, err := script.Load(path)
	if err == nil {
		facts.Append("Ceremony", wrapLabel(fmt.Sprintf("%s (%s): %s", s.ID, s.Kind, s.Title)))
		var e *ceremony.Engine
		if e, err = ceremony.New(s, ceremony.Options{Prompter: reviewPrompter{}}); err == nil {
			ok := wrapLabel("The script is valid and its inputs are present (and as pinned). The plan below is what the engine will do.")
			ok.Importance = widget.SuccessImportance
			status = append(status, ok)
			for _, st := range e.Plan() {
				plan.Add(planStep(st))
			}
		}
	}
	if err != nil {
		status = append(status, warningLabel("Not ready for the ceremony yet:\n"+err.Error()),
			wrapLabel("The file is saved as a draft. Edit it again to fix what is listed; inputs written by an earlier ceremony may simply not be here yet."))
	}
	text := selectableLabel(string(raw))
	text.TextStyle = fyne.TextStyle{Monospace: true}
	tabs := container.NewAppTabs(
		container.NewTabItem("Plan", container.NewVScroll(plan)),
		container.NewTabItem("Script text", container.NewVScroll(text)),
	)
	open := widget.NewButtonWithIcon("Open the reviewed file", theme.DocumentIcon(), func() { p.OpenScript(path) })
	open.Importance = widget.HighImportance
	edit := widget.NewButton("Edit again", func() { p.showForm(f, "Edit "+filepath.Base(path)) })
	top := container.NewVBox(heading("Review the script"), wrapLabel("Have the file reviewed: compare its SHA-256 (or the words, read aloud) with the copy the reviewers approved. The ceremony runs this file unchanged."), facts)
	top.Objects = append(top.Objects, status...)
	p.screen("Review "+filepath.Base(path), container.NewBorder(top, container.NewHBox(open, edit, widget.NewButton("Back to ceremonies", p.showStart)), nil, nil, tabs))
	p.win.Canvas().Focus(open)
}

func planStep(st ceremony.StepInfo) fyne.CanvasObject {
	var roles []string
	for _, r := range st.Confirm {
		roles = append(roles, r.Title())
	}
	txt := fmt.Sprintf("Do: %s\nCheck: %s\nRecord: %s", st.Do, st.Check, st.Record)
	if len(roles) > 0 {
		txt += "\nConfirm: " + strings.Join(roles, ", ")
	}
	return container.NewVBox(boldLabel(fmt.Sprintf("%d. %s", st.Number, st.Title)), wrapLabel(txt))
}

func selectableLabel(s string) *widget.Label {
	l := wrapLabel(s)
	l.Selectable = true
	return l
}

// EditScript opens an existing script in the form. When the form would not
// write the file back byte for byte (a key this kind does not use, another
// layout, comments of its own), the script opens read-only with the reason,
// and a copy can be edited instead.
func (p *CeremoniesPage) EditScript(path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		dialog.ShowError(err, p.win)
		return
	}
	s, err := script.Decode(raw)
	if err != nil {
		p.showReadOnly(path, raw, "The form cannot read it:\n"+err.Error(), nil)
		return
	}
	if !containsKind(formKinds, s.Kind) {
		p.showReadOnly(path, raw, fmt.Sprintf("The form has no kind %q (one of %s).", s.Kind, kindNames()), nil)
		return
	}
	f := NewScriptForm(p.win, p.settings, s.Kind)
	f.SetPath(path)
	f.Load(s)
	out, err := f.YAML()
	if err == nil && bytes.Equal(out, raw) {
		p.showForm(f, "Edit "+filepath.Base(path))
		return
	}
	orig, _ := script.Decode(raw)
	p.showReadOnly(path, raw, notRepresentable(raw, orig, f.Script(), out, err), f)
}

func kindNames() string {
	var names []string
	for _, k := range formKinds {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// notRepresentable says why the form would not write a script back as it is.
func notRepresentable(raw []byte, orig, fromForm *script.Script, out []byte, err error) string {
	if err != nil {
		return "The form cannot write it: " + err.Error()
	}
	if d := script.Diff(orig, fromForm); len(d) > 0 {
		return "The form would not keep " + strings.Join(d, ", ") + ": a key this kind of ceremony does not use, or a combination the form does not offer (the script's own validation says more when it is opened to run)."
	}
	if n, x, y := script.LineDiff(raw, out); n > 0 {
		return fmt.Sprintf("Its values are all in the form, but its layout or comments are its own: at line %d the file has\n  %s\nwhere the form writes\n  %s\nSaving it from the form would rewrite them, and the file would need a new review.", n, x, y)
	}
	return "The form writes it differently."
}

// showReadOnly shows a script the form cannot edit in place.
func (p *CeremoniesPage) showReadOnly(path string, raw []byte, reason string, f *ScriptForm) {
	p.form = nil
	text := selectableLabel(string(raw))
	text.TextStyle = fyne.TextStyle{Monospace: true}
	openRun := widget.NewButton("Open to run", func() { p.OpenScript(path) })
	buttons := []fyne.CanvasObject{openRun}
	if f != nil {
		buttons = append(buttons, widget.NewButton("Edit a copy in the form…", func() {
			f.SetPath("")
			p.showForm(f, "Copy of "+filepath.Base(path))
		}))
	}
	buttons = append(buttons, widget.NewButton("Back to ceremonies", p.showStart))
	top := container.NewVBox(heading("This script opens read-only"), wrapLabel(path), warningLabel(reason))
	p.screen("Read-only "+filepath.Base(path), container.NewBorder(top, container.NewHBox(buttons...), nil, nil, container.NewVScroll(text)))
	p.win.Canvas().Focus(openRun)
}

// reviewPrompter lets the review build the engine (New and Plan ask nobody).
type reviewPrompter struct{}

var errReviewOnly = errors.New("the review does not run the ceremony")

func (reviewPrompter) StepStarted(context.Context, ceremony.StepInfo) error { return errReviewOnly }
func (reviewPrompter) Inform(context.Context, ceremony.Notice) error        { return errReviewOnly }
func (reviewPrompter) Confirm(context.Context, ceremony.ConfirmRequest) ([]ceremony.Confirmation, error) {
	return nil, errReviewOnly
}
func (reviewPrompter) DeliverShare(context.Context, ceremony.DeliveryRequest) (ceremony.Delivery, error) {
	return ceremony.Delivery{}, errReviewOnly
}
func (reviewPrompter) PresentShare(context.Context, ceremony.ShareRequest) (ceremony.ShareInput, error) {
	return ceremony.ShareInput{}, errReviewOnly
}
func (reviewPrompter) Secret(context.Context, ceremony.SecretRequest) ([]byte, error) {
	return nil, errReviewOnly
}
