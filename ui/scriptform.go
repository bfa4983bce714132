package ui

import (
	"fmt"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony/script"
)

// ScriptForm edits one ceremony script of a given kind: a field for every
// key of the script language that kind uses (declared in scriptfields.go),
// each checked as it is typed by the script package's own validation and
// its problem shown under the field it names. It holds no YAML of its own:
// Script collects the fields into a script.Script and YAML encodes it with
// script.Encode, so what is saved is what the engine reads.
type ScriptForm struct {
	widget.BaseWidget
	kind     script.Kind
	ctx      *formCtx
	settings *Settings
	fields   []*formField
	sections []*formSection
	file     *scriptEntry // where the script is saved
	summary  *widget.Label
	actions  *fyne.Container
	scroll   *container.Scroll
	content  fyne.CanvasObject
	loading  bool

	problems script.Problems // the last validation
	local    int             // fields whose text cannot be read (not a number, not a date)
	yaml     []byte          // the last encoding, nil when it failed
	encErr   error

	// OnSave runs when Save is pressed or Ctrl+S typed.
	OnSave func()
	// OnChanged runs after every edit, once the form is checked (tests).
	OnChanged func()
}

// formField is one declared field on screen.
type formField struct {
	decl    fieldDecl
	ed      editor
	label   *widget.Label
	cell    *fyne.Container
	hint    *widget.Label
	problem *widget.Label
	visible bool
	err     error // the editor's own error (text it cannot read)
}

type formSection struct {
	title  string
	head   *widget.Label
	grid   *fyne.Container
	fields []*formField
}

// NewScriptForm builds the form for kind, empty; Load fills it.
func NewScriptForm(win fyne.Window, settings *Settings, kind script.Kind) *ScriptForm {
	f := &ScriptForm{kind: kind, settings: settings}
	f.ctx = &formCtx{win: win, changed: f.changed, shortcut: f.shortcut, focused: f.ensureVisible, form: f}
	f.file = newScriptEntry(f.ctx, false, "where the script is saved, e.g. /media/ceremony/root-2026.yaml")
	chooseFile := newScriptButton(f.ctx, "Choose…", f.chooseFile)
	fileSection := &formSection{title: "Script file", head: boldLabel("Script file"),
		grid: container.New(layout.NewFormLayout(), widget.NewLabel("Save as"), container.NewBorder(nil, nil, nil, chooseFile, f.file))}
	f.sections = append(f.sections, fileSection)
	for _, d := range scriptFields() {
		if len(d.kinds) > 0 && !containsKind(d.kinds, kind) {
			continue
		}
		ff := &formField{decl: d, ed: d.make(f.ctx), label: widget.NewLabel(d.label), hint: wrapLabel(d.hint), problem: warningLabel("")}
		ff.hint.Importance = widget.LowImportance
		ff.problem.Hide()
		if d.hint == "" {
			ff.hint.Hide()
		}
		ff.cell = container.NewVBox(ff.ed.object(), ff.hint, ff.problem)
		sec := f.section(d.section)
		sec.fields = append(sec.fields, ff)
		sec.grid.Add(ff.label)
		sec.grid.Add(ff.cell)
		f.fields = append(f.fields, ff)
	}
	var objs []fyne.CanvasObject
	for _, s := range f.sections {
		objs = append(objs, s.head, s.grid)
	}
	f.summary = wrapLabel("")
	f.actions = container.NewHBox()
	f.scroll = container.NewVScroll(container.NewVBox(objs...))
	f.content = container.NewBorder(nil, container.NewVBox(widget.NewSeparator(), f.summary, f.actions), nil, nil, f.scroll)
	f.ExtendBaseWidget(f)
	return f
}

func (f *ScriptForm) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(f.content) }

func (f *ScriptForm) section(title string) *formSection {
	for _, s := range f.sections {
		if s.title == title {
			return s
		}
	}
	s := &formSection{title: title, head: heading(title), grid: container.New(layout.NewFormLayout())}
	s.head.SizeName = theme.SizeNameSubHeadingText
	f.sections = append(f.sections, s)
	return s
}

// Kind is the kind of ceremony the form writes.
func (f *ScriptForm) Kind() script.Kind { return f.kind }

// SetActions puts buttons under the form (Save, Back...).
func (f *ScriptForm) SetActions(objs ...fyne.CanvasObject) {
	f.actions.Objects = objs
	f.actions.Refresh()
}

// Path is where the script is saved; relative paths in it resolve against
// its directory.
func (f *ScriptForm) Path() string { return strings.TrimSpace(f.file.Text) }

// SetPath sets where the script is saved.
func (f *ScriptForm) SetPath(p string) { f.file.SetText(p) }

// Dir is the directory relative paths of the script are relative to.
func (f *ScriptForm) Dir() string {
	if p := f.Path(); p != "" {
		if abs, err := filepath.Abs(p); err == nil {
			return filepath.Dir(abs)
		}
	}
	return "."
}

func (f *ScriptForm) chooseFile() {
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			return
		}
		p := w.URI().Path()
		w.Close()
		_ = removeFile(p) // Save writes it; the dialog only chose the name
		f.file.SetText(p)
	}, f.ctx.win)
	d.SetFileName(string(f.kind) + ".yaml")
	d.Show()
}

// ensureVisible scrolls the form so that o, which just got the keyboard
// focus, is on screen with its label's line.
func (f *ScriptForm) ensureVisible(o fyne.CanvasObject) { scrollIntoView(f.scroll, o) }

// scrollIntoView scrolls scroll so that o, inside it, which just got the
// keyboard focus, is on screen with the line above it.
func scrollIntoView(scroll *container.Scroll, o fyne.CanvasObject) {
	app := fyne.CurrentApp()
	if app == nil || scroll == nil || scroll.Content == nil {
		return
	}
	d := app.Driver()
	top := d.AbsolutePositionForObject(o).Y - d.AbsolutePositionForObject(scroll.Content).Y
	view, off := scroll.Size().Height, scroll.Offset.Y
	const margin = 48
	switch {
	case top-margin < off:
		off = top - margin
	case top+o.Size().Height+margin > off+view:
		// Going down the form: the field comes a third of the way down,
		// so what belongs to it (a file's description, its problem) and
		// the next fields show below it.
		off = top - view/3
	default:
		return
	}
	scroll.ScrollToOffset(fyne.NewPos(0, max(0, off)))
}

// FocusFirst puts the keyboard focus on the first field (the file name).
func (f *ScriptForm) FocusFirst() {
	if f.ctx.win != nil {
		f.ctx.win.Canvas().Focus(f.file)
	}
}

// shortcut handles the form's keyboard shortcuts: Ctrl+S saves.
func (f *ScriptForm) shortcut(s fyne.Shortcut) bool {
	if cs, ok := s.(*desktop.CustomShortcut); ok && cs.KeyName == fyne.KeyS && cs.Modifier == fyne.KeyModifierShortcutDefault {
		if f.OnSave != nil {
			f.OnSave()
		}
		return true
	}
	return false
}

// saveShortcut is Ctrl+S (Cmd+S on macOS).
var saveShortcut = &desktop.CustomShortcut{KeyName: fyne.KeyS, Modifier: fyne.KeyModifierShortcutDefault}

// Load shows s in the form. The editors may add empty sections to s while
// reading it: pass a script the form may keep.
func (f *ScriptForm) Load(s *script.Script) {
	f.loading = true
	for _, ff := range f.fields {
		ff.visible = ff.decl.when == nil || ff.decl.when(s)
		if ff.visible {
			ff.ed.load(s)
		}
	}
	f.loading = false
	f.changed()
}

// Script collects the fields into a new script: the sections the kind
// needs, then each visible field in order (a field's visibility may depend
// only on fields before it).
func (f *ScriptForm) Script() *script.Script {
	s, _ := f.collect()
	return s
}

func (f *ScriptForm) collect() (*script.Script, int) {
	s := newSections(f.kind)
	bad := 0
	for _, ff := range f.fields {
		ff.visible = ff.decl.when == nil || ff.decl.when(s)
		ff.err = nil
		if !ff.visible {
			continue
		}
		if err := ff.ed.store(s); err != nil {
			ff.err = err
			bad++
		}
	}
	return s, bad
}

// apply changes the script with change (a picker filling several fields)
// and shows the result.
func (f *ScriptForm) apply(change func(s *script.Script)) {
	s, _ := f.collect()
	change(s)
	f.Load(s)
}

// YAML is the script as it would be saved, or why it cannot be.
func (f *ScriptForm) YAML() ([]byte, error) {
	if f.local > 0 {
		return nil, fmt.Errorf("%d field(s) cannot be read: see the messages under them", f.local)
	}
	if f.encErr != nil {
		return nil, f.encErr
	}
	return f.yaml, nil
}

// Problems are what validation says about the script on screen.
func (f *ScriptForm) Problems() script.Problems { return f.problems }

// changed re-checks the script after an edit: visibility, the script's
// own validation (script.Parse on the encoded bytes, exactly what the engine
// reads), and each problem put under its field.
func (f *ScriptForm) changed() {
	if f.loading {
		return
	}
	s, bad := f.collect()
	f.local = bad
	f.yaml, f.encErr = script.Encode(s)
	f.problems = nil
	if f.encErr == nil {
		if _, err := script.Parse(f.yaml); err != nil {
			if ps, ok := err.(script.Problems); ok {
				f.problems = ps
			} else {
				f.problems = script.Problems{{Msg: err.Error()}}
			}
		}
	}
	// Fields that follow others (the custodians follow the participants)
	// change without calling back here; then the form is checked again.
	again := false
	f.loading = true
	for _, ff := range f.fields {
		if r, ok := ff.ed.(interface{ follow(*script.Script) bool }); ok && ff.visible && r.follow(s) {
			again = true
		}
	}
	f.loading = false
	if again {
		f.changed()
		return
	}
	f.show()
	if f.OnChanged != nil {
		f.OnChanged()
	}
}

// show updates visibility and puts each problem under its field.
func (f *ScriptForm) show() {
	msgs := map[*formField][]string{}
	var other []string
	for _, p := range f.problems {
		if ff, exact := f.fieldFor(p.Path); ff != nil {
			m := p.Msg
			if !exact {
				m = p.Path + ": " + m
			}
			msgs[ff] = append(msgs[ff], m)
		} else {
			other = append(other, p.String())
		}
	}
	for _, sec := range f.sections {
		any := sec.title == "Script file"
		for _, ff := range sec.fields {
			if ff.visible {
				ff.label.Show()
				ff.cell.Show()
				any = true
			} else {
				ff.label.Hide()
				ff.cell.Hide()
			}
			m := msgs[ff]
			if ff.err != nil {
				m = append([]string{ff.err.Error()}, m...)
			}
			if len(m) > 0 && ff.visible {
				ff.problem.SetText(strings.Join(m, "\n"))
				ff.problem.Show()
			} else {
				ff.problem.Hide()
			}
		}
		if any {
			sec.head.Show()
			sec.grid.Show()
		} else {
			sec.head.Hide()
			sec.grid.Hide()
		}
	}
	n := len(f.problems) + f.local
	switch {
	case f.encErr != nil:
		f.summary.SetText("The script cannot be written: " + f.encErr.Error())
		f.summary.Importance = widget.DangerImportance
	case n == 0:
		f.summary.SetText("The script is valid. Save it, then review the plan and its SHA-256.")
		f.summary.Importance = widget.SuccessImportance
	default:
		txt := fmt.Sprintf("%d problem(s), shown under their fields. A draft can be saved; the ceremony cannot run until they are fixed.", n)
		if len(other) > 0 {
			txt += "\n" + strings.Join(other, "\n")
		}
		f.summary.SetText(txt)
		f.summary.Importance = widget.WarningImportance
	}
	f.summary.Refresh()
}

// fieldFor finds the visible field a problem path names: the field at that
// path or the closest one above it ("participants[2].name" is the
// participants table's), else the first field below it ("signing.subordinate.profile"
// is shown at the profile's first field). exact says the path is the field's own.
func (f *ScriptForm) fieldFor(path string) (*formField, bool) {
	var best *formField
	for _, ff := range f.fields {
		p := ff.decl.path
		if !ff.visible || p == "" {
			continue
		}
		if p == path || contains(ff.decl.covers, path) {
			return ff, true
		}
		if strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			if best == nil || len(p) > len(best.decl.path) {
				best = ff
			}
		}
	}
	if best != nil {
		return best, false
	}
	if path == "" {
		return nil, false
	}
	for _, ff := range f.fields {
		if ff.visible && strings.HasPrefix(ff.decl.path, path+".") {
			return ff, false
		}
	}
	return nil, false
}

// resolve turns a path written in the script into one to open now.
func (f *ScriptForm) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.Dir(), p)
}

// relative writes a picked file's path relative to the script's directory
// when it is inside it (the script and its inputs travel together), else
// absolute.
func (f *ScriptForm) relative(p string) string {
	if f.Path() == "" {
		return p
	}
	rel, err := filepath.Rel(f.Dir(), p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return rel
}

func containsKind(list []script.Kind, k script.Kind) bool {
	for _, x := range list {
		if x == k {
			return true
		}
	}
	return false
}
