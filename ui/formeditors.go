package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony/script"
)

// An editor is the widget of one field of the script form, bound to one
// place in a script.Script: load puts the script's value on screen, store
// writes what is on screen into a script (an error means the text cannot be
// read as the field's type, e.g. a date that is not a date).
type editor interface {
	object() fyne.CanvasObject
	load(s *script.Script)
	store(s *script.Script) error
}

// formCtx is what an editor needs from its form.
type formCtx struct {
	win      fyne.Window
	changed  func()                   // call after every edit
	shortcut func(fyne.Shortcut) bool // the form's shortcuts (Ctrl+S), for entries
	focused  func(fyne.CanvasObject)  // a field got the keyboard focus: scroll to it
	form     *ScriptForm
}

// The form's own select, check and button tell the form when they get the
// keyboard focus, so Tab scrolls the form to the field it reaches (a Fyne
// scroll container does not follow the focus by itself).

type scriptSelect struct {
	widget.Select
	onFocus func(fyne.CanvasObject)
}

func newScriptSelect(c *formCtx, options []string, changed func(string)) *scriptSelect {
	s := &scriptSelect{onFocus: c.focused}
	s.Options, s.OnChanged, s.PlaceHolder = options, changed, "(choose)"
	s.ExtendBaseWidget(s)
	return s
}

func (s *scriptSelect) FocusGained() {
	s.Select.FocusGained()
	if s.onFocus != nil {
		s.onFocus(s)
	}
}

type scriptCheck struct {
	widget.Check
	onFocus func(fyne.CanvasObject)
}

func newScriptCheck(c *formCtx, text string, changed func(bool)) *scriptCheck {
	ch := &scriptCheck{onFocus: c.focused}
	ch.Text, ch.OnChanged = text, changed
	ch.ExtendBaseWidget(ch)
	return ch
}

func (ch *scriptCheck) FocusGained() {
	ch.Check.FocusGained()
	if ch.onFocus != nil {
		ch.onFocus(ch)
	}
}

type scriptButton struct {
	widget.Button
	onFocus func(fyne.CanvasObject)
}

func newScriptButton(c *formCtx, text string, tapped func()) *scriptButton {
	b := &scriptButton{onFocus: c.focused}
	b.Text, b.OnTapped = text, tapped
	b.ExtendBaseWidget(b)
	return b
}

func (b *scriptButton) FocusGained() {
	b.Button.FocusGained()
	if b.onFocus != nil {
		b.onFocus(b)
	}
}

// scriptEntry is the entry of the script form: the form's shortcuts work while
// it has focus, and a multi-line one passes Tab on to the next field instead
// of typing it, so the whole form can be filled from the keyboard.
type scriptEntry struct {
	widget.Entry
	onShortcut func(fyne.Shortcut) bool
	onFocus    func(fyne.CanvasObject)
}

func newScriptEntry(c *formCtx, multiLine bool, placeholder string) *scriptEntry {
	e := &scriptEntry{onShortcut: c.shortcut, onFocus: c.focused}
	e.MultiLine = multiLine
	if multiLine {
		e.Wrapping = fyne.TextWrapWord
	}
	e.ExtendBaseWidget(e)
	if multiLine {
		e.SetMinRowsVisible(3)
	}
	e.SetPlaceHolder(placeholder)
	e.OnChanged = func(string) { c.changed() }
	return e
}

func (e *scriptEntry) FocusGained() {
	e.Entry.FocusGained()
	if e.onFocus != nil {
		e.onFocus(e)
	}
}

// AcceptsTab is false: Tab moves to the next field, even in a list.
func (e *scriptEntry) AcceptsTab() bool { return false }

func (e *scriptEntry) TypedShortcut(s fyne.Shortcut) {
	if e.onShortcut != nil && e.onShortcut(s) {
		return
	}
	e.Entry.TypedShortcut(s)
}

// ---- text

type textEditor struct {
	e   *scriptEntry
	ptr func(*script.Script) *string
}

func (t *textEditor) object() fyne.CanvasObject    { return t.e }
func (t *textEditor) load(s *script.Script)        { t.e.SetText(*t.ptr(s)) }
func (t *textEditor) store(s *script.Script) error { *t.ptr(s) = t.e.Text; return nil }
func (t *textEditor) focusTarget() fyne.Focusable  { return t.e }
func (t *textEditor) setText(v string)             { t.e.SetText(v) }
func (t *textEditor) textValue() string            { return t.e.Text }
func newTextEditor(c *formCtx, multi bool, placeholder string, ptr func(*script.Script) *string) *textEditor {
	return &textEditor{e: newScriptEntry(c, multi, placeholder), ptr: ptr}
}

// ---- choice

// choice is one option of a Select: the value written to the script and
// what the user reads.
type choice struct{ value, label string }

type choiceEditor struct {
	sel     *scriptSelect
	choices []choice
	get     func(*script.Script) string
	set     func(*script.Script, string)
}

func newChoiceEditor(c *formCtx, choices []choice, get func(*script.Script) string, set func(*script.Script, string)) *choiceEditor {
	ce := &choiceEditor{choices: append([]choice(nil), choices...), get: get, set: set}
	ce.sel = newScriptSelect(c, ce.labels(), func(string) { c.changed() })
	return ce
}

func (ce *choiceEditor) labels() []string {
	out := make([]string, len(ce.choices))
	for i, ch := range ce.choices {
		out[i] = ch.label
	}
	return out
}

func (ce *choiceEditor) object() fyne.CanvasObject { return ce.sel }

func (ce *choiceEditor) load(s *script.Script) { ce.show(ce.get(s)) }

// show selects the option whose value is v.
func (ce *choiceEditor) show(v string) {
	for _, ch := range ce.choices {
		if ch.value == v {
			ce.sel.SetSelected(ch.label)
			return
		}
	}
	if v == "" {
		ce.sel.ClearSelected()
		return
	}
	// A value the form does not offer is kept (and validation says what
	// is wrong with it), so opening a script never changes it silently.
	ce.choices = append(ce.choices, choice{v, v + " (not a known choice)"})
	ce.sel.SetOptions(ce.labels())
	ce.sel.SetSelected(v + " (not a known choice)")
}

func (ce *choiceEditor) value() string {
	for _, ch := range ce.choices {
		if ch.label == ce.sel.Selected {
			return ch.value
		}
	}
	return ""
}

func (ce *choiceEditor) store(s *script.Script) error { ce.set(s, ce.value()); return nil }

// stringChoice binds a choice to a string-like field.
func stringChoice[T ~string](ptr func(*script.Script) *T) (func(*script.Script) string, func(*script.Script, string)) {
	return func(s *script.Script) string { return string(*ptr(s)) }, func(s *script.Script, v string) { *ptr(s) = T(v) }
}

// ---- numbers

type intEditor struct {
	e        *scriptEntry
	optional bool                       // empty is nil (else 0)
	ptr      func(*script.Script) *int  // when !optional
	optPtr   func(*script.Script) **int // when optional
}

func (ie *intEditor) object() fyne.CanvasObject { return ie.e }

func (ie *intEditor) load(s *script.Script) {
	switch {
	case ie.optional && *ie.optPtr(s) == nil:
		ie.e.SetText("")
	case ie.optional:
		ie.e.SetText(strconv.Itoa(**ie.optPtr(s)))
	case *ie.ptr(s) == 0:
		ie.e.SetText("")
	default:
		ie.e.SetText(strconv.Itoa(*ie.ptr(s)))
	}
}

func (ie *intEditor) store(s *script.Script) error {
	txt := strings.TrimSpace(ie.e.Text)
	n := 0
	if txt != "" {
		var err error
		if n, err = strconv.Atoi(txt); err != nil {
			return fmt.Errorf("%q is not a whole number", txt)
		}
	}
	if ie.optional {
		if txt == "" {
			*ie.optPtr(s) = nil
		} else {
			*ie.optPtr(s) = &n
		}
		return nil
	}
	*ie.ptr(s) = n
	return nil
}

// ---- true/false

type boolEditor struct {
	check *scriptCheck
	ptr   func(*script.Script) *bool
}

func newBoolEditor(c *formCtx, text string, ptr func(*script.Script) *bool) *boolEditor {
	return &boolEditor{check: newScriptCheck(c, text, func(bool) { c.changed() }), ptr: ptr}
}

func (b *boolEditor) object() fyne.CanvasObject    { return b.check }
func (b *boolEditor) load(s *script.Script)        { b.check.SetChecked(*b.ptr(s)) }
func (b *boolEditor) store(s *script.Script) error { *b.ptr(s) = b.check.Checked; return nil }

// toggleEditor is a check that adds or removes a section of the script.
type toggleEditor struct {
	check *scriptCheck
	get   func(*script.Script) bool
	set   func(*script.Script, bool)
}

func (t *toggleEditor) object() fyne.CanvasObject    { return t.check }
func (t *toggleEditor) load(s *script.Script)        { t.check.SetChecked(t.get(s)) }
func (t *toggleEditor) store(s *script.Script) error { t.set(s, t.check.Checked); return nil }

// ---- dates

type timeEditor struct {
	e   *scriptEntry
	ptr func(*script.Script) *time.Time
}

func (te *timeEditor) object() fyne.CanvasObject { return te.e }

func (te *timeEditor) load(s *script.Script) { te.show(*te.ptr(s)) }

func (te *timeEditor) show(t time.Time) {
	if t.IsZero() {
		te.e.SetText("")
	} else {
		te.e.SetText(t.Format(time.RFC3339Nano))
	}
}

func (te *timeEditor) store(s *script.Script) error {
	t, err := te.parse()
	*te.ptr(s) = t
	return err
}

// parse reads the entry: empty is the zero time.
func (te *timeEditor) parse() (time.Time, error) {
	txt := strings.TrimSpace(te.e.Text)
	if txt == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, txt)
	if err != nil {
		if d, derr := time.Parse("2006-01-02", txt); derr == nil {
			return time.Time{}, fmt.Errorf("write the time too, e.g. %s", d.Format(time.RFC3339))
		}
		return time.Time{}, fmt.Errorf("%q is not a date and time such as 2026-12-01T00:00:00Z", txt)
	}
	return t, nil
}

// ---- lists

// listEditor edits a list of words, one per line.
type listEditor struct {
	e   *scriptEntry
	ptr func(*script.Script) *[]string
}

func (le *listEditor) object() fyne.CanvasObject { return le.e }
func (le *listEditor) load(s *script.Script)     { le.e.SetText(strings.Join(*le.ptr(s), "\n")) }

func (le *listEditor) store(s *script.Script) error {
	*le.ptr(s) = splitLines(le.e.Text)
	return nil
}

func splitLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// setEditor is a check per option; the list keeps the order it was read in,
// and options ticked later are added at its end.
type setEditor struct {
	checks  []*scriptCheck
	options []string
	order   []string
	ptr     func(*script.Script) *[]string
	box     *fyne.Container
	loading bool
}

func newSetEditor(c *formCtx, options []string, ptr func(*script.Script) *[]string) *setEditor {
	se := &setEditor{options: options, ptr: ptr}
	var objs []fyne.CanvasObject
	for _, o := range options {
		ch := newScriptCheck(c, o, nil)
		ch.OnChanged = func(on bool) {
			if se.loading {
				return
			}
			se.order = removeString(se.order, o)
			if on {
				se.order = append(se.order, o)
			}
			c.changed()
		}
		se.checks = append(se.checks, ch)
		objs = append(objs, ch)
	}
	se.box = container.NewHBox(objs...)
	return se
}

func (se *setEditor) object() fyne.CanvasObject { return se.box }

func (se *setEditor) load(s *script.Script) {
	se.loading = true
	defer func() { se.loading = false }()
	se.order = append([]string(nil), *se.ptr(s)...)
	for i, o := range se.options {
		se.checks[i].SetChecked(contains(se.order, o))
	}
}

func (se *setEditor) store(s *script.Script) error {
	*se.ptr(s) = append([]string(nil), se.order...)
	return nil
}

func removeString(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// ---- rows: participants and revoked certificates

// rowsEditor edits a list of records, one row of widgets each, with a
// Remove button per row and an Add button.
type rowsEditor[T any] struct {
	c       *formCtx
	box     *fyne.Container
	rows    []rowWidgets[T]
	addText string
	newRow  func() rowWidgets[T]
	ptr     func(*script.Script) *[]T
	keepNil bool
}

// rowWidgets are one row's widgets and how they read and show a record.
type rowWidgets[T any] struct {
	objs  []fyne.CanvasObject
	first fyne.Focusable
	get   func() (T, error)
	set   func(T)
}

func (re *rowsEditor[T]) object() fyne.CanvasObject { return re.box }

func (re *rowsEditor[T]) rebuild() {
	var objs []fyne.CanvasObject
	for i := range re.rows {
		i := i
		remove := newScriptButton(re.c, "Remove", func() {
			re.rows = append(re.rows[:i], re.rows[i+1:]...)
			re.rebuild()
			re.c.changed()
		})
		cells := append(append([]fyne.CanvasObject{}, re.rows[i].objs...), remove)
		objs = append(objs, container.NewBorder(nil, nil, nil, remove, container.NewGridWithColumns(len(re.rows[i].objs), cells[:len(cells)-1]...)))
	}
	add := newScriptButton(re.c, re.addText, func() {
		r := re.newRow()
		re.rows = append(re.rows, r)
		re.rebuild()
		re.c.changed()
		if re.c.win != nil && r.first != nil {
			re.c.win.Canvas().Focus(r.first)
		}
	})
	objs = append(objs, container.NewHBox(add))
	re.box.Objects = objs
	re.box.Refresh()
}

func (re *rowsEditor[T]) load(s *script.Script) {
	re.rows = nil
	for _, v := range *re.ptr(s) {
		r := re.newRow()
		r.set(v)
		re.rows = append(re.rows, r)
	}
	re.rebuild()
}

func (re *rowsEditor[T]) store(s *script.Script) error {
	var out []T
	var errs []string
	for i, r := range re.rows {
		v, err := r.get()
		if err != nil {
			errs = append(errs, fmt.Sprintf("row %d: %v", i+1, err))
		}
		out = append(out, v)
	}
	*re.ptr(s) = out
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func newParticipantsEditor(c *formCtx) *rowsEditor[script.Participant] {
	var roles []choice
	for _, r := range script.Roles {
		roles = append(roles, choice{string(r), string(r)})
	}
	re := &rowsEditor[script.Participant]{c: c, box: container.NewVBox(), addText: "Add participant",
		ptr: func(s *script.Script) *[]script.Participant { return &s.Participants }}
	re.newRow = func() rowWidgets[script.Participant] {
		name := newScriptEntry(c, false, "name as on their ID")
		role := newChoiceEditor(c, roles, nil, nil)
		role.sel.PlaceHolder = "(role)"
		return rowWidgets[script.Participant]{
			objs:  []fyne.CanvasObject{name, role.sel},
			first: name,
			get: func() (script.Participant, error) {
				return script.Participant{Name: name.Text, Role: script.Role(role.value())}, nil
			},
			set: func(p script.Participant) {
				name.SetText(p.Name)
				role.show(string(p.Role))
			},
		}
	}
	re.rebuild()
	return re
}

func newRevocationsEditor(c *formCtx) *rowsEditor[script.Revocation] {
	var reasons []choice
	for _, name := range crlReasonNames() {
		reasons = append(reasons, choice{name, name})
	}
	re := &rowsEditor[script.Revocation]{c: c, box: container.NewVBox(), addText: "Add a revoked certificate",
		ptr: func(s *script.Script) *[]script.Revocation { return &crlOf(s).Revoked }}
	re.newRow = func() rowWidgets[script.Revocation] {
		serial := newScriptEntry(c, false, "serial (hex, as openssl prints it)")
		at := &timeEditor{e: newScriptEntry(c, false, "revoked at, e.g. 2026-12-01T00:00:00Z")}
		reason := newChoiceEditor(c, reasons, nil, nil)
		reason.sel.PlaceHolder = "(reason)"
		return rowWidgets[script.Revocation]{
			objs:  []fyne.CanvasObject{serial, at.e, reason.sel},
			first: serial,
			get: func() (script.Revocation, error) {
				when, err := at.parse()
				return script.Revocation{Serial: serial.Text, RevokedAt: when, Reason: reason.value()}, err
			},
			set: func(r script.Revocation) {
				serial.SetText(r.Serial)
				at.show(r.RevokedAt)
				reason.show(r.Reason)
			},
		}
	}
	re.rebuild()
	return re
}
