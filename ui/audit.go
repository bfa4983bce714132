package ui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/browse"
	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
)

// auditColumns are the event table's columns.
var auditColumns = []struct {
	title string
	width float32
	value func(e store.Event) string
}{
	{"Time (UTC)", 170, func(e store.Event) string { return e.Time.UTC().Format("2006-01-02 15:04:05") }},
	{"Event", 150, func(e store.Event) string { return e.Name }},
	{"Key", 290, func(e store.Event) string { return e.KeyARN }},
	{"Principal", 290, func(e store.Event) string { return orDefault(e.PrincipalARN, e.InvokedBy) }},
	{"Account", 120, func(e store.Event) string { return e.Account }},
	{"Region", 100, func(e store.Event) string { return e.Region }},
	{"Error", 190, func(e store.Event) string { return e.ErrorCode }},
}

// AuditPage ingests CloudTrail logs and browses the events of the audit
// database: a virtual table over paged, indexed queries (never all rows),
// filters, the original JSON of an event, and report export.
type AuditPage struct {
	widget.BaseWidget
	win      fyne.Window
	settings *Settings
	content  fyne.CanvasObject

	mu     sync.Mutex
	st     *store.Store
	src    *browse.Source
	cancel context.CancelFunc // the running ingest or indexing

	// tableMu serializes the table's refreshes that background listings
	// ask for (a page arriving, a listing ready). The app runs them all on
	// the UI goroutine, but Fyne's test driver runs fyne.Do on the
	// caller's goroutine: a page of an earlier listing refreshed the
	// table while a new listing did, and two goroutines setting one
	// cell's label panicked in RichText (a fresh-machine run, 2026-12-03).
	// Not p.mu: refreshing the table takes p.mu in its cell callback.
	tableMu sync.Mutex

	dbLabel  *widget.Label
	status   *widget.Label
	progress *widget.ProgressBar
	stopBtn  *widget.Button
	table    *widget.Table
	detail   *widget.Label
	charts   *fyne.Container
	filters  map[string]*widget.Entry
	source   *widget.Entry // a path to ingest, typed
	reports  *widget.Entry // the folder reports are written to, typed
	errsOnly *widget.Check
	order    *widget.Select

	keys *keyView // the key provenance view (auditkey.go)

	// OnListed, if set, runs on the UI goroutine after each listing is ready (tests).
	OnListed func()

	// title names what the page is doing in the window title while it is
	// on screen (an ingest or a report can take a while; the taskbar and a
	// keyboard-driven test see when it ends).
	title func(string)
}

func (p *AuditPage) setTitle(what string) {
	if p.title != nil {
		p.title(what)
	}
}

func (w *MainWindow) auditPage() fyne.CanvasObject {
	p := &AuditPage{win: w.Window, settings: w.settings(), filters: map[string]*widget.Entry{}}
	p.title = func(what string) {
		if w.current == "audit" {
			setTitle(w.Window, "Audit — "+what)
		}
	}
	p.build()
	w.audit = p
	if w.opts.AuditKey != "" {
		p.ShowKey(w.opts.AuditKey)
	}
	w.SetOnDropped(func(_ fyne.Position, uris []fyne.URI) {
		if w.current != "audit" {
			return
		}
		var paths []string
		for _, u := range uris {
			paths = append(paths, u.Path())
		}
		p.Ingest(paths)
	})
	return p
}

// laidOut opens the database once the page is in the window.
func (p *AuditPage) laidOut() { p.openStore() }

func (p *AuditPage) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(p.content) }

func (p *AuditPage) build() {
	p.dbLabel = wrapLabel("")
	p.status = wrapLabel("")
	p.progress = widget.NewProgressBar()
	p.progress.Hide()
	p.stopBtn = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), p.Stop)
	p.stopBtn.Hide()
	files := widget.NewButtonWithIcon("Ingest files…", theme.FileIcon(), func() {
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			r.Close()
			p.Ingest([]string{r.URI().Path()})
		}, p.win).Show()
	})
	folder := widget.NewButtonWithIcon("Ingest a folder…", theme.FolderOpenIcon(), func() {
		dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err != nil || u == nil {
				return
			}
			p.Ingest([]string{u.Path()})
		}, p.win).Show()
	})
	// Paths can be typed as well as chosen: a file dialog is slow to reach
	// from the keyboard, and an air-gapped laptop's media have known paths.
	p.source = widget.NewEntry()
	p.source.SetPlaceHolder("CloudTrail folder, file or archive to ingest (Enter ingests)")
	ingestTyped := func() {
		if path := strings.TrimSpace(p.source.Text); path != "" {
			p.Ingest([]string{path})
		}
	}
	p.source.OnSubmitted = func(string) { ingestTyped() }
	ingestBtn := widget.NewButtonWithIcon("Ingest", theme.DownloadIcon(), ingestTyped)
	for _, name := range []string{"From", "To", "Key", "Alias", "Principal", "Event", "Account", "Region"} {
		e := widget.NewEntry()
		e.OnSubmitted = func(string) { p.Apply() }
		p.filters[name] = e
	}
	p.filters["From"].SetPlaceHolder("YYYY-MM-DD")
	p.filters["To"].SetPlaceHolder("YYYY-MM-DD (exclusive)")
	p.filters["Key"].SetPlaceHolder("key ARN or id")
	p.filters["Alias"].SetPlaceHolder("alias/name")
	p.filters["Principal"].SetPlaceHolder("principal or role ARN")
	p.filters["Event"].SetPlaceHolder("e.g. Decrypt")
	p.errsOnly = widget.NewCheck("Errors only", func(bool) { p.Apply() })
	p.order = widget.NewSelect([]string{"Newest first", "Oldest first"}, func(string) { p.Apply() })
	p.order.SetSelected("Newest first")
	apply := widget.NewButtonWithIcon("Apply filters", theme.SearchIcon(), p.Apply)
	grid := container.NewGridWithColumns(4,
		labelled("From", p.filters["From"]), labelled("To", p.filters["To"]), labelled("Key", p.filters["Key"]), labelled("Alias", p.filters["Alias"]),
		labelled("Principal", p.filters["Principal"]), labelled("Event", p.filters["Event"]), labelled("Account", p.filters["Account"]), labelled("Region", p.filters["Region"]),
	)
	p.table = widget.NewTableWithHeaders(
		func() (int, int) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.src == nil {
				return 0, len(auditColumns)
			}
			return p.src.Len(), len(auditColumns)
		},
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(id widget.TableCellID, o fyne.CanvasObject) {
			l := o.(*widget.Label)
			p.mu.Lock()
			src := p.src
			p.mu.Unlock()
			if src == nil {
				l.SetText("")
				return
			}
			ev, ok := src.Row(id.Row)
			if !ok {
				l.SetText("…")
				src.Request(context.Background(), id.Row)
				return
			}
			l.SetText(auditColumns[id.Col].value(ev))
		},
	)
	p.table.ShowHeaderColumn = false
	p.table.CreateHeader = func() fyne.CanvasObject { return boldLabel("") }
	p.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Row < 0 && id.Col >= 0 {
			o.(*widget.Label).SetText(auditColumns[id.Col].title)
		}
	}
	for i, c := range auditColumns {
		p.table.SetColumnWidth(i, c.width)
	}
	p.detail = wrapLabel("Select an event to see its original CloudTrail record.")
	p.detail.TextStyle = fyne.TextStyle{Monospace: true}
	p.detail.Selectable = true
	p.table.OnSelected = func(id widget.TableCellID) { p.showDetail(id.Row) }
	top := container.NewVBox(p.auditHeading(), p.dbLabel,
		container.NewBorder(nil, nil, nil, container.NewHBox(ingestBtn, files, folder, p.stopBtn), p.source), p.progress, p.status,
		grid, container.NewHBox(p.errsOnly, p.order, apply), p.reportButtons())
	p.charts = container.NewVBox(wrapLabel("Charts appear when a listing is ready."))
	tabs := container.NewAppTabs(
		container.NewTabItem("Original record", container.NewVScroll(p.detail)),
		container.NewTabItem("Charts", container.NewVScroll(p.charts)),
	)
	split := container.NewVSplit(p.table, tabs)
	split.Offset = 0.7
	p.content = p.withKeyView(container.NewBorder(top, nil, nil, nil, split))
	p.ExtendBaseWidget(p)
}

// focusInitial puts the keyboard on the path to ingest (or, when the page
// opens on the key view, on its list).
func (p *AuditPage) focusInitial() {
	if !p.keys.focusInitial() {
		p.win.Canvas().Focus(p.source)
	}
}

func labelled(name string, e *widget.Entry) fyne.CanvasObject {
	return container.NewBorder(nil, nil, widget.NewLabel(name), nil, e)
}

// Store is the open audit database (nil until opened).
func (p *AuditPage) Store() *store.Store {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// Source is the current listing.
func (p *AuditPage) Source() *browse.Source {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.src
}

func (p *AuditPage) openStore() {
	path := p.settings.AuditDB()
	p.dbLabel.SetText("Database: " + path)
	go func() {
		st, err := store.Open(context.Background(), path)
		fyne.Do(func() {
			if err != nil {
				p.status.SetText("Cannot open the audit database: " + err.Error())
				p.status.Importance = widget.DangerImportance
				p.status.Refresh()
				return
			}
			p.mu.Lock()
			p.st = st
			p.mu.Unlock()
			p.Apply()
		})
	}()
}

// Filter is what the filter fields say.
func (p *AuditPage) Filter() (store.Filter, error) {
	f := store.Filter{
		KeyARN: strings.TrimSpace(p.filters["Key"].Text), Alias: strings.TrimSpace(p.filters["Alias"].Text),
		Principal: strings.TrimSpace(p.filters["Principal"].Text), EventName: strings.TrimSpace(p.filters["Event"].Text),
		Account: strings.TrimSpace(p.filters["Account"].Text), Region: strings.TrimSpace(p.filters["Region"].Text),
		ErrorsOnly: p.errsOnly.Checked,
	}
	for name, dst := range map[string]*time.Time{"From": &f.From, "To": &f.To} {
		v := strings.TrimSpace(p.filters[name].Text)
		if v == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, v); err != nil {
				return f, fmt.Errorf("%s: write a date as YYYY-MM-DD", name)
			}
		}
		*dst = t.UTC()
	}
	return f, nil
}

// Apply lists the events matching the filters (in the background).
func (p *AuditPage) Apply() {
	st := p.Store()
	if st == nil {
		return
	}
	f, err := p.Filter()
	if err != nil {
		p.status.SetText(err.Error())
		return
	}
	p.keys.filtersApplied()
	order := store.Newest
	if p.order.Selected == "Oldest first" {
		order = store.Oldest
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	if p.cancel != nil {
		p.cancel()
	}
	p.cancel = cancel
	p.mu.Unlock()
	p.status.SetText("Listing…")
	start := time.Now()
	go func() {
		src, err := browse.Open(ctx, st, f, order, browse.DefaultPageSize)
		if err == nil {
			src.OnPage = func(int, error) {
				fyne.Do(func() {
					p.tableMu.Lock()
					defer p.tableMu.Unlock()
					p.table.Refresh()
				})
			}
			_, err = src.Fetch(ctx, 0)
		}
		fyne.Do(func() {
			if err != nil {
				if ctx.Err() == nil {
					p.status.SetText("Cannot list events: " + err.Error())
				}
				return
			}
			p.mu.Lock()
			p.src = src
			p.mu.Unlock()
			p.status.SetText(fmt.Sprintf("%s events match (listed in %s).", groupDigits(int64(src.Len())), time.Since(start).Round(time.Millisecond)))
			p.tableMu.Lock()
			p.table.Refresh()
			p.table.ScrollToTop()
			p.tableMu.Unlock()
			if p.OnListed != nil {
				p.OnListed()
			}
		})
		if err != nil {
			return
		}
		// The charts aggregate every matching event: the daily counts are
		// the listing's own (src.Days), the operations mix is computed
		// after the table is on screen.
		days := store.DayLabels(src.Days())
		names, err := st.NameCounts(ctx, f)
		if err != nil {
			return
		}
		fyne.Do(func() {
			scope := "all keys in the listing"
			if f.KeyARN != "" {
				scope = "key " + f.KeyARN
			}
			p.charts.Objects = []fyne.CanvasObject{
				newBarChart("Daily events — "+scope, days, false),
				newBarChart("Operations mix — "+scope, names, true),
			}
			p.charts.Refresh()
		})
	}()
}

func (p *AuditPage) showDetail(row int) {
	src := p.Source()
	if src == nil {
		return
	}
	ev, ok := src.Row(row)
	if !ok {
		return
	}
	st := p.Store()
	go func() {
		raw, err := st.RawEvent(context.Background(), ev.EventID)
		text := indentedJSON(raw)
		if err != nil {
			text = "Cannot read the original record: " + err.Error()
		}
		fyne.Do(func() { p.detail.SetText(text) })
	}()
}

// Ingest loads files or folders into the database with progress and cancel.
func (p *AuditPage) Ingest(paths []string) {
	st := p.Store()
	if st == nil {
		return
	}
	// Ceremony output directories go to the key provenance view.
	if paths = p.keys.takeCeremonies(paths); len(paths) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	p.progress.SetValue(0)
	p.progress.Show()
	p.stopBtn.Show()
	p.status.SetText("Ingesting " + strings.Join(paths, ", "))
	p.setTitle("ingesting")
	go func() {
		sum, err := ingest.Run(ctx, st, paths, ingest.Options{Progress: func(pr ingest.Progress) {
			frac := 0.0
			if pr.BytesTotal > 0 {
				frac = float64(pr.BytesDone) / float64(pr.BytesTotal)
			}
			rate := 0.0
			if s := pr.Elapsed.Seconds(); s > 0 {
				rate = float64(pr.KMSEvents) / s
			}
			msg := fmt.Sprintf("%s: %d of %d files, %d KMS events (%.0f events/s)", pr.Phase, pr.FilesDone, pr.FilesTotal, pr.KMSEvents, rate)
			fyne.Do(func() { p.progress.SetValue(frac); p.status.SetText(msg) })
		}})
		fyne.Do(func() {
			p.progress.Hide()
			p.stopBtn.Hide()
			switch {
			case err != nil && ctx.Err() != nil:
				p.status.SetText("Ingest cancelled at a file boundary; nothing half-loaded. Ingest again to continue.")
				p.setTitle("ingest cancelled")
			case err != nil:
				p.status.SetText("Ingest failed: " + err.Error())
				p.status.Importance = widget.DangerImportance
				p.setTitle("ingest failed")
			default:
				p.setTitle(fmt.Sprintf("ingested %d files, %d new KMS events, %d failed", sum.FilesOK, sum.KMSNew, len(sum.Failed)))
				msg := fmt.Sprintf("Ingested: %d files ok, %d failed, %d new KMS events, %d duplicates, %d conflicting, %d non-KMS skipped, %d entries not read.",
					sum.FilesOK, len(sum.Failed), sum.KMSNew, sum.KMSDuplicate, sum.Conflicts, sum.NonKMS, sum.FilesSkipped)
				for _, fe := range sum.Failed {
					msg += "\n" + fe.Path + ": " + fe.Error
				}
				for _, sk := range sum.Skipped {
					msg += "\nnot read: " + sk.Path + ": " + sk.Reason
				}
				for _, w := range sum.Warnings {
					msg += "\nwarning: " + w
				}
				p.status.SetText(msg)
			}
			p.status.Refresh()
			p.Apply()
		})
	}()
}

// Stop cancels the running ingest or listing and closes the database.
func (p *AuditPage) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		p.cancel()
	}
}

// Close releases the database (when the window closes).
func (p *AuditPage) Close() {
	p.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st != nil {
		p.st.Close()
		p.st = nil
	}
}

func tableCell(row int) widget.TableCellID { return widget.TableCellID{Row: row, Col: 0} }
