package ui

import (
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// CeremoniesPage opens a script (or saves a template to edit), shows its
// summary and SHA-256 to read aloud, and runs it in the wizard.
type CeremoniesPage struct {
	widget.BaseWidget
	win      fyne.Window
	body     *fyne.Container
	content  fyne.CanvasObject
	wizard   *Wizard
	settings *Settings
	form     *ScriptForm // the script form on screen, if any
	initial  fyne.Focusable
}

func (w *MainWindow) ceremoniesPage() fyne.CanvasObject {
	p := &CeremoniesPage{win: w.Window, settings: w.settings()}
	p.body = container.NewStack()
	p.showStart()
	p.content = p.body
	p.ExtendBaseWidget(p)
	w.ceremonies = p
	return p
}

func (p *CeremoniesPage) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(p.content)
}

// Wizard is the running wizard, if any.
func (p *CeremoniesPage) Wizard() *Wizard { return p.wizard }

func (p *CeremoniesPage) set(o fyne.CanvasObject) {
	p.body.Objects = []fyne.CanvasObject{o}
	p.body.Refresh()
}

// screen shows o and names it in the window title, once it is on screen
// (what the title names is what the window shows).
func (p *CeremoniesPage) screen(title string, o fyne.CanvasObject) {
	p.set(o)
	setTitle(p.win, title)
}

func templateNames() []string {
	var names []string
	entries, _ := fs.ReadDir(assets.Ceremonies, "ceremonies")
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

func (p *CeremoniesPage) showStart() {
	p.form = nil
	pickFile := func(then func(string)) func() {
		return func() {
			dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
				if err != nil || r == nil {
					return
				}
				path := r.URI().Path()
				r.Close()
				then(path)
			}, p.win).Show()
		}
	}
	create := widget.NewButtonWithIcon("New ceremony script…", theme.ContentAddIcon(), p.showKinds)
	create.Importance = widget.HighImportance
	edit := widget.NewButtonWithIcon("Edit a script in the form…", theme.DocumentCreateIcon(), pickFile(p.EditScript))
	open := widget.NewButtonWithIcon("Open a reviewed script to run…", theme.FolderOpenIcon(), pickFile(p.OpenScript))
	names := templateNames()
	var rows []fyne.CanvasObject
	for _, name := range names {
		name := name
		form := widget.NewButton("Open in the form", func() { p.templateForm(name) })
		save := widget.NewButton("Save a copy…", func() { p.saveTemplate(name) })
		rows = append(rows, container.NewBorder(nil, nil, nil, container.NewHBox(form, save), widget.NewLabel(name)))
	}
	intro := wrapLabel("A ceremony is a reviewed script run step by step by named people. Create the script in a form (or start from a template with example values), save it, have the saved file reviewed by its SHA-256, then open it here to run. Rehearse first: a rehearsal runs the exact script against a throwaway token.")
	top := container.NewVBox(heading("Ceremonies"), intro, container.NewHBox(create, edit, open), boldLabel("Templates (example values)"))
	p.screen("", container.NewBorder(top, nil, nil, nil, container.NewVScroll(container.NewVBox(rows...))))
	p.initial = create
	p.win.Canvas().Focus(create)
}

// focusInitial gives the keyboard focus to the start page's main button once
// the page is in the window (the window calls it when it shows the page).
func (p *CeremoniesPage) focusInitial() {
	if p.initial != nil && p.form == nil && p.wizard == nil {
		p.win.Canvas().Focus(p.initial)
	}
}

// templateForm opens a shipped template in the form, to be saved elsewhere.
func (p *CeremoniesPage) templateForm(name string) {
	data, err := fs.ReadFile(assets.Ceremonies, "ceremonies/"+name+".yaml")
	if err != nil {
		dialog.ShowError(err, p.win)
		return
	}
	s, err := script.Decode(data)
	if err != nil {
		dialog.ShowError(err, p.win)
		return
	}
	f := NewScriptForm(p.win, p.settings, s.Kind)
	f.Load(s)
	p.showForm(f, "New script from the "+name+" template")
}

func (p *CeremoniesPage) saveTemplate(name string) {
	data, err := fs.ReadFile(assets.Ceremonies, "ceremonies/"+name+".yaml")
	if err != nil {
		dialog.ShowError(err, p.win)
		return
	}
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			return
		}
		defer w.Close()
		if _, err := w.Write(data); err != nil {
			dialog.ShowError(err, p.win)
		}
	}, p.win)
	d.SetFileName(name + ".yaml")
	d.Show()
}

// OpenScript loads and validates a script and shows its summary.
func (p *CeremoniesPage) OpenScript(path string) {
	s, err := script.Load(path)
	if err != nil {
		p.screen("Cannot use "+filepath.Base(path), container.NewVBox(heading("The script cannot be used"), warningLabel(err.Error()),
			wrapLabel("Nothing has touched the token. Correct the script (every problem is listed above), have the change reviewed, and open it again."),
			widget.NewButton("Back", p.showStart)))
		return
	}
	p.showSummary(s)
}

func (p *CeremoniesPage) showSummary(s *script.Script) {
	p.form = nil
	sum := s.SHA256[:]
	form := widget.NewForm(
		widget.NewFormItem("Title", wrapLabel(s.Title)),
		widget.NewFormItem("Kind", widget.NewLabel(string(s.Kind))),
		widget.NewFormItem("Ceremony ID", widget.NewLabel(s.ID)),
		widget.NewFormItem("Script", wrapLabel(s.Path)),
		widget.NewFormItem("SHA-256", wrapLabel(hex.EncodeToString(sum))),
		widget.NewFormItem("Read aloud", wrapLabel(strings.Join(words.Lines(sum, 8), "\n"))),
	)
	var people []string
	for _, pt := range s.Participants {
		people = append(people, fmt.Sprintf("%s — %s", pt.Name, pt.Role.Title()))
	}
	form.Append("Participants", wrapLabel(strings.Join(people, "\n")))
	if s.Quorum.Threshold > 0 {
		form.Append("Quorum", wrapLabel(fmt.Sprintf("%d of %d: %s", s.Quorum.Threshold, len(s.Quorum.Custodians), strings.Join(s.Quorum.Custodians, ", "))))
	}
	// What the script's token can do for it, probed without logging in, so
	// a missing capability is known before anyone is called in.
	tokenInfo := wrapLabel("Checking the token…")
	form.Append("Token", tokenInfo)
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		text := "Not checked: "
		if r, err := ceremony.ProbeScript(s); err != nil {
			text += err.Error() + "\nPlan again where the token is inserted; the ceremony's token step checks it before any share is issued."
		} else if text = r.Summary(); len(r.Blocking()) > 0 {
			text = "THIS TOKEN CANNOT CARRY OUT THE SCRIPT: change the script or the token.\n" + text
		}
		fyne.Do(func() { tokenInfo.SetText(text) })
	}()
	out := widget.NewEntry()
	out.SetText(s.OutputDir())
	if d := p.settings.OutputDir(); d != "" {
		out.SetText(d)
	}
	form.Append("Output directory", out)
	start := func(rehearse bool) {
		<-probed // the probe has released the module
		dir := strings.TrimSpace(out.Text)
		if dir == s.OutputDir() {
			dir = "" // let the engine apply its rules (a rehearsal never writes to the real directory)
		}
		p.run(s, dir, rehearse)
	}
	rehearse := widget.NewButtonWithIcon("Rehearse (throwaway token)", theme.MediaPlayIcon(), func() { start(true) })
	run := widget.NewButtonWithIcon("Run the ceremony", theme.ConfirmIcon(), func() {
		dialog.ShowConfirm("Run the real ceremony?", "This works on the real token named by the script. Has the script been reviewed and rehearsed?", func(ok bool) {
			if ok {
				start(false)
			}
		}, p.win)
	})
	run.Importance = widget.HighImportance
	if _, err := os.Stat(filepath.Join(s.OutputDir(), s.Output.Prefix+".transcript.jsonl")); err == nil {
		run.SetText("Resume the ceremony")
	}
	edit := widget.NewButtonWithIcon("Edit in the form", theme.DocumentCreateIcon(), func() { p.EditScript(s.Path) })
	p.screen("Script "+filepath.Base(s.Path), container.NewBorder(container.NewVBox(heading("Ceremony script")), container.NewHBox(widget.NewButton("Back", p.showStart), rehearse, run, edit), nil, nil,
		container.NewVScroll(form)))
	if s.Kind == script.RootGeneration || s.Kind == script.KeyRestore {
		p.win.Canvas().Focus(rehearse) // the safe action first
	} else {
		p.win.Canvas().Unfocus()
	}
}

// run starts the wizard for s.
func (p *CeremoniesPage) run(s *script.Script, outDir string, rehearse bool) {
	wz, err := NewWizard(p.win, s, outDir, rehearse)
	if err != nil {
		dialog.ShowError(err, p.win)
		return
	}
	p.wizard = wz
	p.settings.AddRecentTranscript(wz.engine.TranscriptPath())
	back := widget.NewButton("Back to ceremonies", p.showStart)
	back.Hide()
	wz.OnFinished = func(*ceremony.Result, error) { back.Show() }
	p.set(container.NewBorder(nil, container.NewHBox(back), nil, nil, wz))
	p.win.Canvas().SetOnTypedKey(func(k *fyne.KeyEvent) {
		if k.Name == fyne.KeyReturn || k.Name == fyne.KeyEnter {
			wz.Primary()
		}
	})
	wz.Start()
}

// Rehearse opens the script at path and starts its rehearsal at once.
func (p *CeremoniesPage) Rehearse(path string) {
	s, err := script.Load(path)
	if err != nil {
		p.OpenScript(path) // shows the problems
		return
	}
	p.run(s, "", true)
}
