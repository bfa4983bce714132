package ui

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// doOnUI runs f on the Fyne UI goroutine.
var doOnUI = fyne.Do

// rehearsalColour marks every screen of a rehearsal.
var rehearsalColour = color.NRGBA{R: 0xE0, G: 0x7A, B: 0x10, A: 0xFF}

// Wizard runs one ceremony on screen: one step at a time, who acts, what to
// do and what is checked, the confirmations, quorum share entry, and a
// running transcript. It drives the same engine as the CLI.
type Wizard struct {
	widget.BaseWidget
	win       fyne.Window
	engine    *ceremony.Engine
	prompter  *guiPrompter
	rehearsal bool
	cancel    context.CancelFunc

	banner    fyne.CanvasObject
	stepTitle *widget.Label
	stepInfo  *widget.Label
	steps     *widget.List
	plan      []ceremony.StepInfo
	current   int
	panel     *fyne.Container
	log       *widget.List
	entries   []string
	stopBtn   *widget.Button
	content   fyne.CanvasObject

	mu      sync.Mutex
	abort   func()
	primary func() // what Enter does on the current panel
	done    chan struct{}
	result  *ceremony.Result
	runErr  error

	// OnFinished, if set, runs on the UI goroutine when the ceremony ends.
	OnFinished func(*ceremony.Result, error)
}

// NewWizard prepares a wizard for s. It validates the script (every problem
// at once) before anything touches a token.
func NewWizard(win fyne.Window, s *script.Script, outDir string, rehearse bool) (*Wizard, error) {
	wz := &Wizard{win: win, rehearsal: rehearse, done: make(chan struct{})}
	wz.prompter = &guiPrompter{wz: wz}
	e, err := ceremony.New(s, ceremony.Options{Prompter: wz.prompter, OutDir: outDir, Rehearse: rehearse,
		AfterStep: func(info ceremony.StepInfo, en transcript.Entry) {
			line := fmt.Sprintf("#%d %s %s  %s", en.Seq, en.Time.Format("15:04:05"), en.Step, en.Result)
			doOnUI(func() { wz.addLog(line, info) })
		}})
	if err != nil {
		return nil, err
	}
	wz.engine = e
	wz.plan = e.Plan()
	wz.build()
	return wz, nil
}

func (wz *Wizard) build() {
	title := heading(wz.engine.Script().Title)
	title.Wrapping = fyne.TextWrapWord
	if wz.rehearsal {
		bg := canvas.NewRectangle(rehearsalColour)
		txt := canvas.NewText("REHEARSAL — throwaway token; nothing produced here is real", color.White)
		txt.TextStyle = fyne.TextStyle{Bold: true}
		wz.banner = container.NewStack(bg, container.NewPadded(txt))
	} else {
		wz.banner = widget.NewLabel("")
	}
	wz.stepTitle = widget.NewLabel("Preparing…")
	wz.stepTitle.TextStyle = fyne.TextStyle{Bold: true}
	wz.stepInfo = wrapLabel("")
	wz.steps = widget.NewList(
		func() int { return len(wz.plan) },
		func() fyne.CanvasObject { return widget.NewLabel("00. step title that is long") },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			s := wz.plan[id]
			mark := "  "
			switch {
			case s.Done:
				mark = "✓ "
			case id == wz.current:
				mark = "▶ "
			}
			o.(*widget.Label).SetText(fmt.Sprintf("%s%d. %s", mark, s.Number, s.Title))
		},
	)
	wz.panel = container.NewVBox(widget.NewLabel("Starting the ceremony…"))
	wz.log = widget.NewList(
		func() int { return len(wz.entries) },
		func() fyne.CanvasObject { return widget.NewLabel("#00 00:00:00 step-id ok") },
		func(id widget.ListItemID, o fyne.CanvasObject) { o.(*widget.Label).SetText(wz.entries[id]) },
	)
	wz.stopBtn = widget.NewButtonWithIcon("Stop ceremony", theme.CancelIcon(), wz.Stop)
	logBox := container.NewBorder(boldLabel("Transcript"), nil, nil, nil, wz.log)
	left := container.NewBorder(boldLabel("Steps"), nil, nil, nil, wz.steps)
	centre := container.NewBorder(container.NewVBox(wz.stepTitle, wz.stepInfo, widget.NewSeparator()), nil, nil, nil,
		container.NewVScroll(wz.panel))
	right := container.NewVSplit(centre, logBox)
	right.Offset = 0.72 // the current step gets most of the height
	body := container.NewHSplit(left, right)
	body.Offset = 0.26
	wz.content = container.NewBorder(container.NewVBox(wz.banner, title), container.NewHBox(wz.stopBtn), nil, nil, body)
	wz.ExtendBaseWidget(wz)
}

func (wz *Wizard) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(wz.content) }

func boldLabel(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.TextStyle = fyne.TextStyle{Bold: true}
	return l
}

// Start runs the ceremony in the background.
func (wz *Wizard) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	wz.cancel = cancel
	go func() {
		res, err := wz.engine.Run(ctx)
		wz.engine.Close()
		wz.mu.Lock()
		wz.result, wz.runErr = res, err
		wz.mu.Unlock()
		doOnUI(func() {
			wz.showEnd(res, err)
			if wz.OnFinished != nil {
				wz.OnFinished(res, err)
			}
		})
		close(wz.done)
	}()
}

// Done is closed when the ceremony has ended; Result reports how.
func (wz *Wizard) Done() <-chan struct{} { return wz.done }

// Result is the ceremony's result once Done is closed.
func (wz *Wizard) Result() (*ceremony.Result, error) {
	wz.mu.Lock()
	defer wz.mu.Unlock()
	return wz.result, wz.runErr
}

// Pending is the kind of answer the wizard waits for: inform, confirm,
// deliver, present, secret, or "" while the engine works.
func (wz *Wizard) Pending() string { return wz.prompter.Pending() }

// Stop asks to stop the ceremony; it can be resumed later from its transcript.
func (wz *Wizard) Stop() {
	wz.mu.Lock()
	abort := wz.abort
	wz.mu.Unlock()
	if abort != nil {
		abort()
	} else if wz.cancel != nil {
		wz.cancel()
	}
}

func (wz *Wizard) setAbort(f func()) {
	wz.mu.Lock()
	wz.abort = f
	wz.mu.Unlock()
}

// Primary triggers the current panel's main action, as Enter does.
func (wz *Wizard) Primary() {
	if wz.primary != nil {
		wz.primary()
	}
}

// setPanel shows a panel. Nothing keeps the keyboard focus from the last
// one, so Enter reaches the panel's main action unless the panel focuses a
// field of its own.
func (wz *Wizard) setPanel(primary func(), objs ...fyne.CanvasObject) {
	wz.primary = primary
	wz.panel.Objects = objs
	wz.panel.Refresh()
	if wz.win != nil {
		wz.win.Canvas().Unfocus()
	}
}

// focus puts the keyboard focus on a panel's first field.
func (wz *Wizard) focus(o fyne.Focusable) {
	if wz.win != nil {
		wz.win.Canvas().Focus(o)
	}
}

// waitingFor names the step and what the panel waits for in the window
// title ("Key Ceremony — REHEARSAL — step 4 of 17: … — confirmation"), so
// the taskbar, a screen reader and a keyboard-driven test know where the
// ceremony is.
func (wz *Wizard) waitingFor(what string) {
	if wz.win == nil {
		return
	}
	t := ""
	if wz.rehearsal {
		t = "REHEARSAL — "
	}
	if wz.current < len(wz.plan) {
		st := wz.plan[wz.current]
		t += fmt.Sprintf("step %d of %d: %s", st.Number, st.Total, st.Title)
	}
	if what != "" {
		t += " — " + what
	}
	setTitle(wz.win, t)
}

func (wz *Wizard) showStep(s ceremony.StepInfo) {
	wz.current = s.Number - 1
	wz.stepTitle.SetText(fmt.Sprintf("Step %d of %d: %s", s.Number, s.Total, s.Title))
	var roles []string
	for _, r := range s.Confirm {
		roles = append(roles, r.Title())
	}
	txt := "What to do: " + s.Do + "\nWhat the app checks: " + s.Check + "\nRecorded: " + s.Record
	if len(roles) > 0 {
		txt += "\nConfirmed by: " + strings.Join(roles, ", ")
	}
	wz.stepInfo.SetText(txt)
	wz.steps.Refresh()
	wz.steps.ScrollTo(wz.current)
	wz.setPanel(nil, widget.NewLabel("Working…"))
	wz.waitingFor("working")
}

func (wz *Wizard) addLog(line string, info ceremony.StepInfo) {
	wz.entries = append(wz.entries, line)
	if i := info.Number - 1; i >= 0 && i < len(wz.plan) {
		wz.plan[i].Done = true
	}
	wz.log.Refresh()
	wz.log.ScrollToBottom()
	wz.steps.Refresh()
}

// factsView shows labelled values, with their word lists for reading aloud.
func factsView(facts []ceremony.Fact) fyne.CanvasObject {
	form := widget.NewForm()
	for _, f := range facts {
		v := f.Value
		if f.Words != "" {
			v += "\n" + f.Words
		}
		l := wrapLabel(v)
		l.Selectable = true
		form.Append(f.Label, l)
	}
	return form
}

func warningLabel(s string) *widget.Label {
	l := wrapLabel(s)
	l.Importance = widget.DangerImportance
	return l
}

func (wz *Wizard) showNotice(n ceremony.Notice, reply func(any, error)) {
	objs := []fyne.CanvasObject{boldLabel(n.Title), factsView(n.Facts)}
	if n.Warning != "" {
		objs = append(objs, warningLabel("Warning: "+n.Warning))
	}
	next := func() { reply(nil, nil) }
	btn := widget.NewButtonWithIcon("Continue", theme.NavigateNextIcon(), next)
	btn.Importance = widget.HighImportance
	wz.setPanel(next, append(objs, btn)...)
	wz.waitingFor("continue: " + n.Title)
}

// showConfirm asks every required person to confirm by name: a checkbox each,
// and the button stays disabled until all have.
func (wz *Wizard) showConfirm(r ceremony.ConfirmRequest, reply func(any, error)) {
	stmt := wrapLabel(r.Statement)
	stmt.TextStyle = fyne.TextStyle{Bold: true}
	checks := make([]*enterCheck, len(r.Required))
	confirm := widget.NewButtonWithIcon("Confirm", theme.ConfirmIcon(), nil)
	confirm.Importance = widget.HighImportance
	update := func() {
		for _, c := range checks {
			if !c.Checked {
				confirm.Disable()
				return
			}
		}
		confirm.Enable()
	}
	var boxes []fyne.CanvasObject
	for i, p := range r.Required {
		checks[i] = newEnterCheck(fmt.Sprintf("I, %s (%s), confirm this", p.Name, p.Role.Title()), func(bool) { update() }, wz.Primary)
		boxes = append(boxes, checks[i])
	}
	do := func() {
		if confirm.Disabled() {
			return
		}
		out := make([]ceremony.Confirmation, len(r.Required))
		for i, p := range r.Required {
			out[i] = ceremony.Confirmation{Name: p.Name, Role: p.Role, Time: time.Now().UTC()}
		}
		reply(out, nil)
	}
	confirm.OnTapped = do
	decline := widget.NewButton("Decline", func() { reply(nil, ceremony.ErrDeclined) })
	update()
	objs := []fyne.CanvasObject{stmt, factsView(r.Facts)}
	objs = append(objs, boxes...)
	objs = append(objs, container.NewHBox(confirm, decline))
	wz.setPanel(do, objs...)
	if len(checks) > 0 {
		wz.focus(checks[0])
	}
	wz.waitingFor(fmt.Sprintf("confirmation by %d", len(r.Required)))
}

// showDelivery issues one custodian's share: first "only <name> looks now",
// then where the card and the encrypted file go.
func (wz *Wizard) showDelivery(r ceremony.DeliveryRequest, reply func(any, error)) {
	intro := wrapLabel(fmt.Sprintf("Share %d of %d of the %s (any %d unlock) for %s. Everyone but %s looks away now.", r.Index, r.Custodians, quorumName(r.Quorum), r.Threshold, r.Custodian, r.Custodian))
	intro.TextStyle = fyne.TextStyle{Bold: true}
	only := widget.NewCheck(fmt.Sprintf("Only %s looks at the screen now", r.Custodian), nil)
	var objs []fyne.CanvasObject
	objs = append(objs, intro)
	if r.Problem != "" {
		objs = append(objs, warningLabel(r.Problem))
	}
	has := func(m string) bool {
		for _, x := range r.Media {
			if x == m {
				return true
			}
		}
		return false
	}
	card, file := widget.NewEntry(), widget.NewEntry()
	pass1, pass2 := widget.NewPasswordEntry(), widget.NewPasswordEntry()
	form := widget.NewForm()
	if has("card") {
		card.SetPlaceHolder("path of the share card PDF on " + r.Custodian + "'s medium")
		form.Append("Share card", pathRow(wz.win, card))
	}
	if has("file") {
		file.SetPlaceHolder("path of the encrypted share file on " + r.Custodian + "'s medium")
		form.Append("Share file", pathRow(wz.win, file))
		form.Append(r.Custodian+"'s passphrase", pass1)
		form.Append("Repeat passphrase", pass2)
	}
	form.Hide()
	problem := warningLabel("")
	problem.Hide()
	issue := widget.NewButtonWithIcon("Write "+r.Custodian+"'s share", theme.DocumentSaveIcon(), nil)
	issue.Importance = widget.HighImportance
	issue.Disable()
	only.OnChanged = func(b bool) {
		if b {
			form.Show()
			issue.Enable()
		} else {
			form.Hide()
			issue.Disable()
		}
	}
	do := func() {
		if !only.Checked {
			return
		}
		if has("file") && pass1.Text != pass2.Text {
			problem.SetText("The two passphrases differ.")
			problem.Show()
			return
		}
		d := ceremony.Delivery{CardPath: strings.TrimSpace(card.Text), FilePath: strings.TrimSpace(file.Text)}
		if d.FilePath != "" {
			d.Passphrase = []byte(pass1.Text)
		}
		// The entries' strings cannot be wiped; drop them from the widgets.
		pass1.SetText("")
		pass2.SetText("")
		reply(d, nil)
	}
	issue.OnTapped = do
	pass2.OnSubmitted = func(string) { do() }
	objs = append(objs, only, form, problem, issue)
	wz.setPanel(do, objs...)
	wz.focus(only)
	if r.Problem != "" {
		wz.waitingFor("share for " + r.Custodian + " (the last destination was refused)")
	} else {
		wz.waitingFor("share for " + r.Custodian)
	}
}

// pathRow is an entry with a Browse… button that picks a file to create.
func pathRow(win fyne.Window, e *widget.Entry) fyne.CanvasObject {
	browse := widget.NewButton("Browse…", func() {
		d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
			if err != nil || w == nil {
				return
			}
			path := w.URI().Path()
			w.Close()
			// The engine creates the file itself (O_EXCL); remove the empty one the dialog made.
			_ = removeFile(path)
			e.SetText(path)
		}, win)
		d.Show()
	})
	return container.NewBorder(nil, nil, nil, browse, e)
}

// showPresent collects one share at an unlock: who presents it, and the share
// typed (masked) or as a file with its passphrase. Progress is k of m.
func (wz *Wizard) showPresent(r ceremony.ShareRequest, reply func(any, error)) {
	head := boldLabel(fmt.Sprintf("Quorum: %d of %d shares to %s", r.Have, r.Need, r.Purpose))
	progress := widget.NewProgressBar()
	progress.Max = float64(r.Need)
	progress.SetValue(float64(r.Have))
	objs := []fyne.CanvasObject{head, progress}
	if len(r.Presented) > 0 {
		objs = append(objs, wrapLabel("Presented: "+strings.Join(r.Presented, ", ")))
	}
	if r.Problem != "" {
		objs = append(objs, warningLabel("Refused: "+r.Problem))
	}
	who := widget.NewSelect(r.Waiting, nil)
	who.PlaceHolder = "Custodian presenting a share"
	if len(r.Waiting) > 0 {
		who.SetSelected(r.Waiting[0])
	}
	typed := widget.NewPasswordEntry()
	typed.SetPlaceHolder("share as printed on the card (never shown)")
	file := widget.NewEntry()
	file.SetPlaceHolder("encrypted share file")
	pass := widget.NewPasswordEntry()
	pass.SetPlaceHolder("passphrase of the share file")
	tabs := container.NewAppTabs(
		container.NewTabItem("Type the share", container.NewVBox(typed)),
		container.NewTabItem("Share file", widget.NewForm(widget.NewFormItem("File", openRow(wz.win, file)), widget.NewFormItem("Passphrase", pass))),
	)
	submit := widget.NewButtonWithIcon("Present share", theme.ConfirmIcon(), nil)
	submit.Importance = widget.HighImportance
	do := func() {
		in := ceremony.ShareInput{Custodian: who.Selected}
		if tabs.SelectedIndex() == 0 {
			in.Text = []byte(typed.Text)
		} else {
			in.File, in.Passphrase = strings.TrimSpace(file.Text), []byte(pass.Text)
		}
		typed.SetText("")
		pass.SetText("")
		reply(in, nil)
	}
	submit.OnTapped = do
	typed.OnSubmitted = func(string) { do() }
	pass.OnSubmitted = func(string) { do() }
	objs = append(objs, widget.NewForm(widget.NewFormItem("Custodian", who)), tabs, submit)
	wz.setPanel(do, objs...)
	// Shares issued only as files are presented as files: that tab first.
	if wz.engine != nil && !wz.engine.Script().Quorum.Delivers("card") {
		tabs.SelectIndex(1)
		wz.focus(file)
	} else {
		wz.focus(typed)
	}
	if r.Problem != "" {
		wz.waitingFor("share from " + who.Selected + " (the last share was refused)")
	} else {
		wz.waitingFor("share from " + who.Selected)
	}
}

// openRow is an entry with a Browse… button that picks an existing file.
func openRow(win fyne.Window, e *widget.Entry) fyne.CanvasObject {
	browse := widget.NewButton("Browse…", func() {
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			e.SetText(r.URI().Path())
			r.Close()
		}, win).Show()
	})
	return container.NewBorder(nil, nil, nil, browse, e)
}

func (wz *Wizard) showSecret(r ceremony.SecretRequest, reply func(any, error)) {
	pin := widget.NewPasswordEntry()
	do := func() {
		b := []byte(pin.Text)
		pin.SetText("")
		reply(b, nil)
	}
	pin.OnSubmitted = func(string) { do() }
	btn := widget.NewButton("Enter", do)
	btn.Importance = widget.HighImportance
	wz.setPanel(do, wrapLabel(fmt.Sprintf("%s: %s", r.Who.Name, r.Prompt)), pin, btn)
	wz.focus(pin)
	wz.waitingFor("PIN of " + r.Who.Name)
}

// showEnd is the last screen: the result with its final hash to read aloud,
// or a failure that says what to do.
func (wz *Wizard) showEnd(res *ceremony.Result, err error) {
	wz.stopBtn.Disable()
	wz.setAbort(nil)
	if err != nil {
		msg := err.Error()
		what := "Fix the cause, then open the same script again: the ceremony resumes from the failed step, and the transcript keeps the whole story."
		switch {
		case errors.Is(err, ceremony.ErrAborted) || errors.Is(err, context.Canceled):
			what = "The ceremony was stopped. Open the same script again to resume it."
		case errors.Is(err, ceremony.ErrDeclined):
			what = "A participant declined. Resolve the concern, then open the same script again to resume."
		}
		if wz.rehearsal {
			what = "A rehearsal cannot be resumed: remove its output directory and rehearse again."
		}
		var te *ceremony.TranscriptError
		if errors.As(err, &te) {
			wz.stepTitle.SetText("The transcript does not verify: the ceremony was not resumed")
			wz.setPanel(nil, warningLabel("Failed anchor: "+te.Err.Error()),
				wrapLabel("Nothing was done on the token. The transcript on the output medium is not the one this ceremony wrote: it was changed, "+
					"re-chained or cut, or the shares belong to another quorum. Do not resume from it: keep the medium as evidence and call the auditor."))
			wz.waitingFor("transcript does not verify")
			return
		}
		wz.stepTitle.SetText("The ceremony did not complete")
		wz.setPanel(nil, warningLabel(msg), wrapLabel(what))
		wz.waitingFor("did not complete")
		return
	}
	wz.stepTitle.SetText("Ceremony complete")
	facts := []ceremony.Fact{
		{Label: "Transcript", Value: res.Transcript},
		{Label: "Transcript PDF", Value: res.PDF},
		{Label: "Final hash", Value: fmt.Sprintf("%x", res.FinalHash), Words: words.String(res.FinalHash)},
	}
	for _, a := range res.Anchors {
		facts = append(facts, ceremony.Fact{Label: "Anchor", Value: a})
	}
	paper := widget.NewLabel("Write on the paper: " + words.String(res.FinalHash))
	paper.TextStyle = fyne.TextStyle{Bold: true}
	paper.Wrapping = fyne.TextWrapWord
	objs := []fyne.CanvasObject{wrapLabel("Print the transcript PDF, read the final hash words aloud, write them by hand on the printed transcript, and have every participant sign. " +
		"Anyone can later check the transcript file against that paper: keyceremony ceremony verify TRANSCRIPT --expect \"WORDS\"."), paper, factsView(facts)}
	if s := wz.engine.Script(); s.Kind == script.BYOKWrap && !wz.rehearsal {
		// The BYOK flow ends on the connected machine: say what to carry
		// there and the command to run, checked against the manifest.
		instr := selectableLabel(importInstructions(wz.engine.OutputDir()))
		instr.TextStyle = fyne.TextStyle{Monospace: true}
		objs = append(objs, boldLabel("Import into AWS KMS"), instr)
	}
	wz.setPanel(nil, objs...)
	wz.waitingFor("ceremony complete")
}

// quorumName names the quorum a share belongs to.
func quorumName(q string) string {
	if q == "" {
		return "quorum"
	}
	return q
}

// enterCheck is a checkbox that passes Enter to the panel's main action, so
// a confirmation can be given from the keyboard alone: Tab to each name,
// Space to tick it, Enter to confirm (Fyne delivers keys to the focused
// widget only, and a plain Check ignores Enter).
type enterCheck struct {
	widget.Check
	onEnter func()
}

func (c *enterCheck) TypedKey(k *fyne.KeyEvent) {
	if (k.Name == fyne.KeyReturn || k.Name == fyne.KeyEnter) && c.onEnter != nil {
		c.onEnter()
		return
	}
	c.Check.TypedKey(k)
}

func newEnterCheck(label string, changed func(bool), onEnter func()) *enterCheck {
	c := &enterCheck{onEnter: onEnter}
	c.Text, c.OnChanged = label, changed
	c.ExtendBaseWidget(c)
	return c
}
