package ui

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/ceremonies"
	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/keyprov"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// keyView is the Audit page's key provenance view: the EXTERNAL KMS keys
// and the Private CAs of the key provenance report (keyprov: the model the
// PDF is rendered from), one at a time with its timeline, usage and
// findings; the original CloudTrail record of each event; and each
// ceremony's transcript, verified again when it is opened
// (ceremonies.Reopen). Everything it shows comes from audit/: it only lays
// it out.
type keyView struct {
	p       *AuditPage
	events  fyne.CanvasObject // the page's event browser
	view    fyne.CanvasObject // this view
	open    *widget.Button    // on the event browser: switches here
	back    *widget.Button
	status  *widget.Label
	list    *widget.List
	detail  *fyne.Container
	scroll  *container.Scroll
	evTitle *widget.Label
	// evidence shows a record or a transcript; refused is shown instead
	// of it when a transcript no longer holds.
	evidence *widget.Label
	refused  *widget.Label
	evScroll *container.Scroll
	paper    *widget.Entry
	paperRow *fyne.Container
	split    *container.Split // the detail above the evidence
	cerPath  *widget.Entry
	allowReh *widget.Check

	// On the UI goroutine only.
	rep     *keyprov.Report
	items   []keyItem
	current string            // the ARN shown
	opened  *keyprov.Ceremony // the transcript in the evidence pane
	want    string            // a key or CA to show once the report is ready
	shown   bool
	stale   bool
	gen     int
	// loadNote is what loading ceremonies said, shown above the report's
	// summary once the report is rebuilt.
	loadNote string

	// now is the clock the whole period ends by (tests set it).
	now func() time.Time
	// busy counts the background work whose result is not on screen yet
	// (tests wait for it: the test driver runs fyne.Do on the calling
	// goroutine).
	busy atomic.Int32
}

type keyItem struct {
	sec  *keyprov.Section
	what string // "KMS key" or "Private CA"
}

// withKeyView puts the key provenance view beside the page's event
// browser: one of them is on screen at a time.
func (p *AuditPage) withKeyView(events fyne.CanvasObject) fyne.CanvasObject {
	kv := p.keyView()
	kv.events = events
	kv.view.Hide()
	return container.NewStack(events, kv.view)
}

// auditHeading is the page's heading with the way to the key view (the
// button comes before the ingest path in the keyboard order: Shift+Tab
// from it).
func (p *AuditPage) auditHeading() fyne.CanvasObject {
	return container.NewBorder(nil, nil, nil, p.keyView().open, heading("Audit"))
}

func (p *AuditPage) keyView() *keyView {
	if p.keys == nil {
		p.keys = &keyView{p: p, stale: true, now: time.Now}
		p.keys.build()
	}
	return p.keys
}

// ShowKey shows the key provenance view with this KMS key (ARN or id) or
// Private CA selected ("" keeps the selection).
func (p *AuditPage) ShowKey(arn string) { p.keys.show(arn) }

func (kv *keyView) build() {
	kv.open = widget.NewButtonWithIcon("Key provenance…", theme.HistoryIcon(), func() { kv.show("") })
	kv.back = widget.NewButtonWithIcon("Events", theme.NavigateBackIcon(), kv.hide)
	refresh := widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), kv.load)
	pdf := widget.NewButtonWithIcon("Provenance report…", theme.DocumentSaveIcon(), func() { kv.p.askReport("provenance") })
	kv.cerPath = widget.NewEntry()
	kv.cerPath.SetPlaceHolder("ceremony output directory or transcript to load (Enter loads)")
	kv.cerPath.OnSubmitted = func(string) { kv.loadTyped() }
	load := widget.NewButtonWithIcon("Load ceremony", theme.DownloadIcon(), kv.loadTyped)
	choose := widget.NewButtonWithIcon("Choose…", theme.FolderOpenIcon(), func() {
		dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err == nil && u != nil {
				kv.loadCeremonies([]string{u.Path()})
			}
		}, kv.p.win).Show()
	})
	kv.allowReh = widget.NewCheck("rehearsals too (marked; never evidence)", nil)
	kv.status = wrapLabel("")
	top := container.NewVBox(
		container.NewBorder(nil, nil, heading("Key provenance"), container.NewHBox(kv.back, refresh, pdf)),
		container.NewBorder(nil, nil, widget.NewLabel("Load a ceremony"), container.NewHBox(load, choose, kv.allowReh), kv.cerPath),
		kv.status)

	kv.list = widget.NewList(func() int { return len(kv.items) },
		func() fyne.CanvasObject {
			title, verdict := boldLabel(""), widget.NewLabel("")
			title.Truncation, verdict.Truncation = fyne.TextTruncateEllipsis, fyne.TextTruncateEllipsis
			return container.NewVBox(title, verdict)
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id >= len(kv.items) {
				return
			}
			it := kv.items[id]
			box := o.(*fyne.Container)
			title, verdict := box.Objects[0].(*widget.Label), box.Objects[1].(*widget.Label)
			title.SetText(it.what + " " + resourceID(it.sec.ARN))
			verdict.Importance = sectionImportance(it.sec)
			verdict.SetText(it.sec.Verdict)
		})
	kv.list.OnSelected = func(id widget.ListItemID) {
		if id < len(kv.items) {
			kv.showSection(kv.items[id])
		}
	}
	kv.detail = container.NewVBox(wrapLabel("Select a key or a CA."))
	kv.scroll = container.NewVScroll(kv.detail)

	kv.evTitle = boldLabel("Evidence")
	kv.evidence = wrapLabel("Choose “CloudTrail record” on an event to see the record as it was ingested, or “Open transcript” on a ceremony to verify its transcript again and read it.")
	kv.evidence.TextStyle = fyne.TextStyle{Monospace: true}
	kv.evidence.Selectable = true
	kv.refused = wrapLabel("")
	kv.refused.Importance = widget.DangerImportance
	kv.refused.Hide()
	kv.evScroll = container.NewVScroll(container.NewVBox(kv.refused, kv.evidence))
	kv.paper = widget.NewEntry()
	kv.paper.SetPlaceHolder("final hash written on the signed paper (64 hex digits or the 32 words): the transcript must end with it")
	kv.paper.OnSubmitted = func(string) { kv.reopen() }
	check := widget.NewButtonWithIcon("Check against the paper", theme.ConfirmIcon(), kv.reopen)
	kv.paperRow = container.NewBorder(nil, nil, nil, check, kv.paper)
	kv.paperRow.Hide() // while a transcript is open
	evidence := container.NewBorder(container.NewVBox(kv.evTitle, kv.paperRow), nil, nil, nil, kv.evScroll)

	kv.split = container.NewVSplit(kv.scroll, evidence)
	right := kv.split
	right.Offset = 0.7
	split := container.NewHSplit(kv.list, right)
	split.Offset = 0.24
	kv.view = container.NewBorder(top, nil, nil, nil, split)
}

// show switches to the key view, rebuilding it when the filters or the
// database changed, and selects arn when it is given.
func (kv *keyView) show(arn string) {
	if arn != "" {
		kv.want = arn
	}
	kv.events.Hide()
	kv.view.Show()
	kv.shown = true
	kv.p.win.Canvas().Focus(kv.list)
	if kv.stale || kv.rep == nil {
		kv.load()
	} else if kv.want != "" {
		kv.pick(kv.current)
	}
}

// focusInitial puts the keyboard on the list when the view is on screen.
func (kv *keyView) focusInitial() bool {
	if kv.shown {
		kv.p.win.Canvas().Focus(kv.list)
	}
	return kv.shown
}

func (kv *keyView) hide() {
	kv.shown = false
	kv.view.Hide()
	kv.events.Show()
	kv.p.win.Canvas().Focus(kv.open)
}

// filtersApplied marks the report out of date (the period, account,
// region or key changed, or an ingest added records); a view on screen
// is rebuilt at once.
func (kv *keyView) filtersApplied() {
	kv.stale = true
	if kv.shown {
		kv.load()
	}
}

// load builds the key provenance report for the page's filters in the
// background: their period, or the whole database when none is given.
func (kv *keyView) load() {
	st := kv.p.Store()
	if st == nil {
		kv.status.SetText("The audit database is not open yet.")
		return
	}
	f, err := kv.p.Filter()
	if err != nil {
		kv.status.SetText(err.Error())
		return
	}
	kv.stale = false
	kv.gen++
	gen := kv.gen
	kv.status.Importance = widget.MediumImportance
	kv.status.SetText("Joining the ceremonies to the CloudTrail records…")
	kv.busy.Add(1)
	go func() {
		defer kv.busy.Add(-1)
		ctx := context.Background()
		sc := report.Scope{From: f.From, To: f.To, Account: f.Account, Region: f.Region, KeyARN: f.KeyARN}
		whole := sc.From.IsZero() && sc.To.IsZero()
		from, to, err := keyprov.WholePeriod(ctx, st, kv.now())
		var r *keyprov.Report
		if err == nil {
			if sc.From.IsZero() {
				sc.From = from
			}
			if sc.To.IsZero() {
				sc.To = to
			}
			r, err = keyprov.Build(ctx, st, keyprov.Options{Scope: sc, Generator: "Key Ceremony GUI", Now: kv.now})
		}
		fyne.Do(func() {
			if gen == kv.gen {
				kv.loaded(r, sc, whole, err)
			}
		})
	}()
}

func (kv *keyView) loaded(r *keyprov.Report, sc report.Scope, whole bool, err error) {
	if err != nil {
		kv.status.Importance = widget.DangerImportance
		kv.status.SetText("Key provenance: " + err.Error())
		return
	}
	kv.rep = r
	kv.items = nil
	for i := range r.Keys {
		kv.items = append(kv.items, keyItem{&r.Keys[i], "KMS key"})
	}
	for i := range r.CAs {
		kv.items = append(kv.items, keyItem{&r.CAs[i], "Private CA"})
	}
	period := "Period " + report.FormatPeriod(sc.From, sc.To)
	if whole {
		period = "The whole database, " + report.FormatPeriod(sc.From, sc.To) + " (From and To on the events view narrow it)"
	}
	text := fmt.Sprintf("%s: %d KMS key(s) with imported material, %d Private CA(s), %d ceremony record(s).\nCoverage %s.",
		period, len(r.Keys), len(r.CAs), len(r.Ceremonies), r.Meta.Coverage.Statement)
	for _, n := range r.Notes {
		text += "\n" + n
	}
	kv.status.Importance = widget.MediumImportance
	if r.Meta.Coverage.Verdict != "complete" {
		kv.status.Importance = widget.WarningImportance
	}
	if kv.loadNote != "" {
		text = kv.loadNote + "\n" + text
		if strings.Contains(kv.loadNote, "REFUSED") || strings.Contains(kv.loadNote, "Loading stopped") {
			kv.status.Importance = widget.DangerImportance
		}
		kv.loadNote = ""
	}
	kv.status.SetText(text)
	kv.status.Refresh()
	kv.list.UnselectAll()
	kv.list.Refresh()
	kv.p.setTitle(fmt.Sprintf("key provenance: %d key(s), %d CA(s), %d finding(s)", len(r.Keys), len(r.CAs), len(r.Findings)))
	prev := kv.current
	kv.current = ""
	kv.pick(prev)
	if len(kv.items) == 0 {
		kv.current = ""
		kv.detail.Objects = []fyne.CanvasObject{wrapLabel("No KMS key with imported material and no Private CA in scope.")}
		kv.detail.Refresh()
	}
}

// pick selects the key or CA asked for (kv.want), else fallback, else
// the first when none is shown; it says when the one asked for is not in
// the report.
func (kv *keyView) pick(fallback string) {
	asked := kv.want
	kv.want = ""
	if asked != "" && kv.selectARN(asked) {
		return
	}
	if asked != "" {
		kv.status.SetText(kv.status.Text + "\n" + asked + " is not among them: not a key with imported material or a Private CA in the database, or outside the filters.")
		kv.status.Importance = widget.DangerImportance
		kv.status.Refresh()
	}
	if fallback != "" && kv.selectARN(fallback) {
		return
	}
	if kv.current == "" && len(kv.items) > 0 {
		kv.list.Select(0)
	}
}

func (kv *keyView) selectARN(arn string) bool {
	for i, it := range kv.items {
		if it.sec.ARN == arn || provenance.SameKey(it.sec.ARN, arn) {
			kv.list.Select(i)
			kv.list.ScrollTo(i)
			return true
		}
	}
	return false
}

func (kv *keyView) showSection(it keyItem) {
	s := it.sec
	kv.current = s.ARN
	title := wrapLabel(it.what + " " + s.ARN)
	title.TextStyle = fyne.TextStyle{Bold: true}
	title.Wrapping = fyne.TextWrapBreak
	title.Selectable = true
	// One line of facts, the verdict, the gaps: the timeline starts high
	// on a laptop's screen.
	facts := []string{"account " + s.Account + ", " + s.Region}
	switch {
	case s.Spec != "" && s.Origin != "":
		facts = append(facts, s.Spec+", origin "+s.Origin)
	case s.Spec != "" || s.Origin != "":
		facts = append(facts, s.Spec+s.Origin)
	}
	if it.what == "KMS key" {
		facts = append(facts, fmt.Sprintf("%d cryptographic calls in the period (%d failed)", s.UsageCalls, s.UsageFailed))
	}
	if s.Description != "" {
		facts = append(facts, "“"+s.Description+"”")
	}
	verdict := wrapLabel("Provenance: " + s.Verdict)
	verdict.Importance = sectionImportance(s)
	verdict.TextStyle = fyne.TextStyle{Bold: true}
	head := []fyne.CanvasObject{title, wrapLabel(strings.Join(facts, " · ")), verdict}
	if len(s.Gaps) > 0 {
		var g []string
		for _, x := range s.Gaps {
			g = append(g, "Coverage gap: "+x.Describe())
		}
		gaps := wrapLabel(strings.Join(g, "\n"))
		gaps.Importance = widget.WarningImportance
		head = append(head, gaps)
	}
	objs := append(head, subheading("Timeline"))
	for _, t := range s.Timeline {
		objs = append(objs, kv.timelineRow(t))
	}
	objs = append(objs, subheading(fmt.Sprintf("Findings (%d)", len(s.Findings))))
	if len(s.Findings) == 0 {
		objs = append(objs, widget.NewLabel("None."))
	}
	for _, f := range s.Findings {
		objs = append(objs, findingRow(f))
	}
	kv.detail.Objects = objs
	kv.detail.Refresh()
	kv.scroll.ScrollToTop()
	kv.p.setTitle("key provenance of " + s.ARN + ": " + s.Verdict)
}

// button is a button of the detail pane: the pane scrolls to it when it
// gets the keyboard focus.
func (kv *keyView) button(text string, icon fyne.Resource, tapped func()) *scriptButton {
	b := &scriptButton{onFocus: func(o fyne.CanvasObject) { scrollIntoView(kv.scroll, o) }}
	b.Text, b.Icon, b.OnTapped = text, icon, tapped
	b.ExtendBaseWidget(b)
	return b
}

// showRecord shows an event's original CloudTrail record.
func (kv *keyView) showRecord(t keyprov.TimelineItem) {
	st := kv.p.Store()
	if st == nil {
		return
	}
	kv.opened = nil
	kv.paperRow.Hide()
	kv.setEvidence("CloudTrail record of "+t.What+" "+t.EventID+" (as ingested)", "", "reading…")
	kv.busy.Add(1)
	go func() {
		defer kv.busy.Add(-1)
		raw, err := keyprov.Record(context.Background(), st, t.EventID)
		text := indentedJSON(raw)
		if err != nil {
			text = "Cannot read the record: " + err.Error()
		}
		fyne.Do(func() { kv.setEvidence(kv.evTitle.Text, "", text) })
	}()
}

// openTranscript verifies a ceremony's transcript again and shows it, or
// why it is refused.
func (kv *keyView) openTranscript(c *keyprov.Ceremony) {
	kv.opened = c
	kv.paperRow.Show()
	kv.reopen()
}

// reopen verifies the opened transcript again, against the paper's final
// hash when one is typed.
func (kv *keyView) reopen() {
	c := kv.opened
	if c == nil {
		return
	}
	title := "Transcript of " + c.Kind + " ceremony " + c.CeremonyID
	var paper []byte
	if typed := strings.TrimSpace(kv.paper.Text); typed != "" {
		h, err := transcript.ParseHash(typed)
		if err != nil {
			kv.setEvidence(title, "The final hash from the paper cannot be read: "+err.Error(), "")
			return
		}
		paper = h
	}
	kv.setEvidence(title, "", "verifying again…")
	kv.busy.Add(1)
	go func() {
		defer kv.busy.Add(-1)
		o := ceremonies.Reopen(ceremonies.Stored{Path: c.Transcript, FinalHash: c.FinalHash, SHA256: c.TranscriptHash}, paper)
		fyne.Do(func() {
			if kv.opened != c {
				return
			}
			if o.Refused != "" {
				kv.setEvidence(title+": REFUSED", "REFUSED: "+o.Refused, o.Text())
			} else {
				kv.setEvidence(title+": verified again", "", o.Text())
			}
			kv.p.setTitle("key provenance: " + strings.ToLower(kv.evTitle.Text[:1]) + kv.evTitle.Text[1:])
		})
	}()
}

func (kv *keyView) setEvidence(title, refused, text string) {
	// Evidence asked for gets room.
	if kv.split.Offset > 0.5 {
		kv.split.SetOffset(0.5)
	}
	kv.evTitle.SetText(title)
	kv.refused.SetText(refused)
	if refused == "" {
		kv.refused.Hide()
	} else {
		kv.refused.Show()
	}
	kv.evidence.SetText(text)
	kv.evScroll.ScrollToTop()
}

// takeCeremonies loads the ceremony evidence among paths given to the
// page's ingest (a dropped output directory) and returns the rest.
func (kv *keyView) takeCeremonies(paths []string) []string {
	trail, cer := ceremonies.Split(paths)
	if len(cer) > 0 {
		kv.show("")
		kv.loadCeremonies(cer)
	}
	return trail
}

func (kv *keyView) loadTyped() {
	if path := strings.TrimSpace(kv.cerPath.Text); path != "" {
		kv.loadCeremonies([]string{path})
	}
}

// loadCeremonies verifies and stores ceremony output directories or
// transcripts, then rebuilds the view.
func (kv *keyView) loadCeremonies(paths []string) {
	st := kv.p.Store()
	if st == nil {
		return
	}
	allow := kv.allowReh.Checked
	kv.status.SetText("Verifying " + strings.Join(paths, ", ") + "…")
	kv.busy.Add(1)
	go func() {
		defer kv.busy.Add(-1)
		sum, err := ceremonies.Ingest(context.Background(), st, paths, append([]string{"gui", "load ceremony"}, paths...),
			ceremonies.Options{AllowRehearsal: allow})
		var b bytes.Buffer
		if sum != nil {
			sum.WriteText(&b)
		}
		if err != nil {
			fmt.Fprintf(&b, "Loading stopped: %v\n", err)
		}
		fyne.Do(func() {
			// What the load said stays above the new report's summary.
			kv.loadNote = strings.TrimSpace(b.String())
			kv.load()
		})
	}()
}
