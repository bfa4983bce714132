// Package ui is Key Ceremony's Fyne desktop application: a thin layer of
// screens over the headless packages (hsm, ceremony, audit). It holds no
// domain logic, so everything it shows can also be done with the CLI.
//
// Threading: Fyne widgets are changed only on the UI goroutine. Work that
// touches a token, a file or the database runs in a goroutine and posts its
// result back with fyne.Do.
package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Options are what the command line passes to the GUI.
type Options struct {
	Module string // PKCS#11 module for this session; empty: Settings, else built-in SoftHSM2
	Page   string // page to open first
	Script string // ceremony script to open on the Ceremonies page
	// Rehearse starts the script's rehearsal at once.
	Rehearse bool
	// Edit is a ceremony script to open in the form.
	Edit string
	// New is the kind of a new ceremony script to start in the form.
	New string
	// AuditKey opens the Audit page's key provenance view on this KMS key
	// (ARN or id) or Private CA.
	AuditKey string
	Version  string
}

// page is one entry of the navigation.
type page struct {
	id    string
	title string
	icon  fyne.Resource
	make  func() fyne.CanvasObject
}

// MainWindow is the application shell: navigation on the left, the selected
// page on the right.
type MainWindow struct {
	fyne.Window
	app        fyne.App
	opts       Options
	pages      []page
	nav        *widget.List
	content    *fyne.Container
	current    string
	tokens     *TokensPage
	ceremonies *CeremoniesPage
	audit      *AuditPage
	// online is the Online actions page, kept while the window lives so
	// an action still running shows its progress when the page is shown again.
	online        fyne.CanvasObject
	onlineActions *onlinePage
}

// NewMainWindow builds the shell. It does not show it.
func NewMainWindow(a fyne.App, opts Options) *MainWindow {
	w := &MainWindow{Window: a.NewWindow("Key Ceremony"), app: a, opts: opts}
	applyTheme(a, w.settings().Theme())
	w.pages = w.pageList()
	w.content = container.NewStack()
	w.nav = widget.NewList(
		func() int { return len(w.pages) },
		func() fyne.CanvasObject {
			return container.NewHBox(widget.NewIcon(theme.HomeIcon()), widget.NewLabel("Ceremonies"))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			box := o.(*fyne.Container)
			box.Objects[0].(*widget.Icon).SetResource(w.pages[id].icon)
			box.Objects[1].(*widget.Label).SetText(w.pages[id].title)
		},
	)
	w.nav.OnSelected = func(id widget.ListItemID) { w.show(w.pages[id].id) }
	split := container.NewHSplit(w.nav, w.content)
	split.Offset = 0.16
	w.SetContent(split)
	// Pages with background work (token polling, a running ceremony) end
	// it when the window closes, releasing the PKCS#11 module.
	w.SetOnClosed(w.stopPages)
	// The size of the laptops it runs on: a 1280×800 screen, filled.
	w.Resize(fyne.NewSize(1280, 800))
	w.SetMaster()

	start := strings.ToLower(opts.Page)
	if start == "" {
		start = "home"
	}
	if opts.Script != "" || opts.Edit != "" || opts.New != "" {
		start = "ceremonies"
	}
	if opts.AuditKey != "" {
		start = "audit"
	}
	w.Select(start)
	if w.ceremonies != nil {
		switch {
		case opts.Script != "" && opts.Rehearse:
			w.ceremonies.Rehearse(opts.Script)
		case opts.Script != "":
			w.ceremonies.OpenScript(opts.Script)
		case opts.Edit != "":
			w.ceremonies.EditScript(opts.Edit)
		case opts.New != "":
			w.ceremonies.NewKind(opts.New)
		}
	}
	return w
}

// pageList is the navigation. Online actions appear only when enabled in
// Settings: the page is not merely disabled but absent, and so is its id
// for Select and --page.
func (w *MainWindow) pageList() []page {
	pages := []page{
		{"home", "Home", theme.HomeIcon(), w.homePage},
		{"tokens", "Tokens", theme.StorageIcon(), func() fyne.CanvasObject {
			w.tokens = NewTokensPage(w.Window, w.settings())
			return w.tokens
		}},
		{"ceremonies", "Ceremonies", theme.DocumentIcon(), w.ceremoniesPage},
		{"byok", "BYOK import", theme.UploadIcon(), w.byokPage},
		{"audit", "Audit", theme.SearchIcon(), w.auditPage},
	}
	if w.settings().OnlineEnabled() {
		pages = append(pages, page{"online", "Online actions", theme.ComputerIcon(), w.onlinePage})
	}
	return append(pages, page{"settings", "Settings", theme.SettingsIcon(), w.settingsPage})
}

// refreshPages rebuilds the navigation after Settings changed which pages
// exist, keeping the page on screen selected without rebuilding it.
func (w *MainWindow) refreshPages() {
	w.pages = w.pageList()
	w.nav.Refresh()
	for i, p := range w.pages {
		if p.id == w.current {
			onSelected := w.nav.OnSelected
			w.nav.OnSelected = nil
			w.nav.Select(i)
			w.nav.OnSelected = onSelected
		}
	}
}

// Select shows the page with the given id ("home", "tokens", ...).
func (w *MainWindow) Select(id string) {
	for i, p := range w.pages {
		if p.id == id {
			w.nav.Select(i)
			return
		}
	}
	w.nav.Select(0)
}

// Current is the id of the page on screen.
func (w *MainWindow) Current() string { return w.current }

// Ceremonies is the ceremonies page once it has been shown.
func (w *MainWindow) Ceremonies() *CeremoniesPage { return w.ceremonies }

// Audit is the audit page once it has been shown.
func (w *MainWindow) Audit() *AuditPage { return w.audit }

// Tokens is the tokens page once it has been shown.
func (w *MainWindow) Tokens() *TokensPage { return w.tokens }

// stopper is a page with background work to end when it is left.
type stopper interface{ Stop() }

// stopPages ends background work when the window closes: token polling, and
// a running ceremony (stopped where it is; it resumes from its transcript).
func (w *MainWindow) stopPages() {
	for _, old := range w.content.Objects {
		if s, ok := old.(stopper); ok {
			s.Stop()
		}
	}
	if w.ceremonies != nil && w.ceremonies.wizard != nil {
		w.ceremonies.wizard.Stop()
	}
	if w.audit != nil {
		w.audit.Close()
	}
	// A running online action is cancelled with the window: an Athena
	// query is asked to stop (it would otherwise run, and bill, to its
	// end), a fetch or download stops at a page or file boundary.
	if w.onlineActions != nil && w.onlineActions.stop != nil {
		w.onlineActions.stop()
	}
}

func (w *MainWindow) show(id string) {
	setTitle(w.Window, "") // the page's screens name themselves
	// Leaving a page stops its polling; a running ceremony keeps running and
	// is there again when its page is shown.
	for _, old := range w.content.Objects {
		if s, ok := old.(stopper); ok {
			s.Stop()
		}
	}
	if id == "audit" && w.audit != nil {
		w.current = id
		w.content.Objects = []fyne.CanvasObject{w.audit}
		w.content.Refresh()
		return
	}
	if id == "ceremonies" && w.ceremonies != nil {
		w.current = id
		w.content.Objects = []fyne.CanvasObject{w.ceremonies}
		w.content.Refresh()
		return
	}
	for _, p := range w.pages {
		if p.id == id {
			w.current = id
			o := p.make()
			w.content.Objects = []fyne.CanvasObject{o}
			w.content.Refresh()
			// A page that names a first field gets the keyboard focus
			// there, now that it is in the window.
			if f, ok := o.(interface{ focusInitial() }); ok {
				f.focusInitial()
			}
			// Background work that updates the page starts once it is
			// laid out (the test driver runs fyne.Do on the calling
			// goroutine, beside this one).
			if f, ok := o.(interface{ laidOut() }); ok {
				f.laidOut()
			}
			return
		}
	}
}

// heading is a page title.
func heading(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.TextStyle = fyne.TextStyle{Bold: true}
	l.SizeName = theme.SizeNameHeadingText
	return l
}
