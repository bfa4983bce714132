package ui

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

// pollInterval is how often the Tokens page looks for inserted or removed tokens.
const pollInterval = 2 * time.Second

// tokenState is what one look at the module found.
type tokenState struct {
	module string
	info   hsm.ModuleInfo
	slots  []hsm.Slot
	mechs  map[uint][]hsm.MechanismInfo
	err    error
}

// fingerprint summarises the slots so polling notices insertions and removals.
func (st tokenState) fingerprint() string {
	var b strings.Builder
	for _, s := range st.slots {
		fmt.Fprintf(&b, "%d:", s.ID)
		if s.Token != nil {
			fmt.Fprintf(&b, "%s/%s/%v/%v/%v", s.Token.Label, s.Token.Serial, s.Token.Initialized, s.Token.UserPINLocked, s.Token.UserPINFinalTry)
		}
		b.WriteByte(';')
	}
	return b.String()
}

// readTokens reads the module's slots and mechanisms. It runs off the UI goroutine.
func readTokens(m *hsm.Module) tokenState {
	st := tokenState{module: m.Path(), mechs: map[uint][]hsm.MechanismInfo{}}
	var err error
	if st.info, err = m.Info(); err != nil {
		st.err = err
		return st
	}
	if st.slots, err = m.Slots(); err != nil {
		st.err = err
		return st
	}
	for _, s := range st.slots {
		if s.Token != nil {
			if ms, err := m.Mechanisms(s.ID); err == nil {
				st.mechs[s.ID] = ms
			}
		}
	}
	return st
}

// TokensPage lists the module's slots and tokens with their flags, mechanisms
// and keys, and follows tokens being inserted and removed.
type TokensPage struct {
	widget.BaseWidget
	win      fyne.Window
	settings *Settings

	mu    sync.Mutex // guards state, mod and stop for background goroutines
	state tokenState
	mod   *hsm.Module
	stop  chan struct{}

	moduleLabel *widget.Label
	status      *widget.Label
	slotList    *widget.List
	details     *fyne.Container
	selected    int
	tab         int // the details tab shown, kept across reloads
	content     fyne.CanvasObject
	keys        []*keyRow

	// OnLoaded, if set, runs on the UI goroutine after each load (tests wait on it).
	OnLoaded func()
}

// keyRow is one key as listed; no handle is kept once the token is closed.
type keyRow struct {
	Label, Class, Type, ID string
	Sensitive, Extractable bool
	Fingerprint            []byte
}

// NewTokensPage builds the page and starts loading and polling.
func NewTokensPage(win fyne.Window, s *Settings) *TokensPage {
	p := &TokensPage{win: win, settings: s, selected: -1, stop: make(chan struct{})}
	p.moduleLabel = widget.NewLabel("")
	p.moduleLabel.Truncation = fyne.TextTruncateEllipsis
	p.status = widget.NewLabel("Reading tokens…")
	var found []string
	for _, c := range hsm.DiscoverModules() {
		found = append(found, fmt.Sprintf("%s (%s)", c.Name, c.Path))
	}
	modules := wrapLabel("PKCS#11 modules found on this machine: " + orDefault(strings.Join(found, "; "), "none") + ". Choose one in Settings.")
	p.slotList = widget.NewList(
		func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.state.slots) },
		func() fyne.CanvasObject {
			return container.NewHBox(widget.NewIcon(theme.StorageIcon()), widget.NewLabel("slot 0000000000 — token label (serial)"))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			p.mu.Lock()
			s := p.state.slots[id]
			p.mu.Unlock()
			o.(*fyne.Container).Objects[1].(*widget.Label).SetText(slotTitle(s))
		},
	)
	p.slotList.OnSelected = func(id widget.ListItemID) {
		if id != p.selected {
			p.keys = nil
		}
		p.selected = id
		p.showDetails()
	}
	p.details = container.NewStack(widget.NewLabel("Select a slot to see its token."))
	refresh := widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), p.Reload)
	top := container.NewBorder(nil, nil, nil, container.NewVBox(refresh), container.NewVBox(heading("Tokens"), p.moduleLabel, modules, p.status))
	split := container.NewHSplit(p.slotList, p.details)
	split.Offset = 0.4
	p.ExtendBaseWidget(p)
	p.content = container.NewBorder(top, nil, nil, nil, split)
	p.Reload()
	go p.poll()
	return p
}

func (p *TokensPage) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(p.content)
}

// Stop ends polling and closes the module; the page calls it when it is left.
func (p *TokensPage) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	if p.mod != nil {
		p.mod.Close()
		p.mod = nil
	}
}

// Reload opens the configured module afresh in the background and reads it.
func (p *TokensPage) Reload() {
	module := p.settings.Module()
	p.status.SetText("Reading tokens…")
	go func() {
		st := tokenState{}
		path, err := softhsm.Resolve(module)
		var m *hsm.Module
		if err == nil {
			m, err = hsm.Open(path)
		}
		if err != nil {
			st.err = err
		} else {
			st = readTokens(m)
		}
		p.mu.Lock()
		old := p.mod
		// The state goes with the module it was read from: the poller
		// compares what it reads with this, and would otherwise see the
		// previous state and redraw the page a second time (resetting
		// what was on screen mid-use).
		p.mod, p.state = m, st
		select {
		case <-p.stop: // the page was left meanwhile
			if m != nil {
				m.Close()
				p.mod = nil
			}
		default:
		}
		p.mu.Unlock()
		if old != nil {
			old.Close()
		}
		fyne.Do(func() { p.apply(st) })
	}()
}

// poll re-reads the slot list and refreshes the page when a token appears,
// disappears or changes state (e.g. a PIN locks).
func (p *TokensPage) poll() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		m, before := p.mod, p.state.fingerprint()
		if m == nil {
			p.mu.Unlock()
			continue
		}
		st := readTokens(m) // under the lock: Stop must not close m meanwhile
		p.mu.Unlock()
		if st.err == nil && st.fingerprint() != before {
			fyne.Do(func() { p.apply(st) })
		}
	}
}

func (p *TokensPage) apply(st tokenState) {
	p.mu.Lock()
	p.state = st
	p.mu.Unlock()
	if st.err != nil {
		p.moduleLabel.SetText("Module: " + orDefault(p.settings.Module(), "built-in SoftHSM2"))
		p.status.SetText("Cannot read tokens: " + st.err.Error())
		p.status.Importance = widget.DangerImportance
	} else {
		p.moduleLabel.SetText(fmt.Sprintf("Module: %s — %s %s", st.module, st.info.Manufacturer, st.info.LibraryVersion))
		present := 0
		for _, s := range st.slots {
			if s.Token != nil && s.Token.Initialized {
				present++
			}
		}
		p.status.SetText(fmt.Sprintf("%d slots, %d initialised tokens (checked every %s for tokens inserted or removed)", len(st.slots), present, pollInterval))
		p.status.Importance = widget.MediumImportance
	}
	p.status.Refresh()
	p.slotList.Refresh()
	if p.selected < 0 || p.selected >= len(st.slots) {
		p.selected = -1
		for i, s := range st.slots {
			if s.Token != nil && s.Token.Initialized {
				p.selected = i
				break
			}
		}
	}
	if p.selected >= 0 {
		p.slotList.Select(p.selected)
	}
	p.showDetails()
	if p.OnLoaded != nil {
		p.OnLoaded()
	}
}

// Slots returns what the last load found.
func (p *TokensPage) Slots() []hsm.Slot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.state.slots)
}

// Err is the last load's error.
func (p *TokensPage) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.err
}

func slotTitle(s hsm.Slot) string {
	switch {
	case s.Token == nil:
		return fmt.Sprintf("Slot %d — no token", s.ID)
	case !s.Token.Initialized:
		return fmt.Sprintf("Slot %d — blank token", s.ID)
	}
	return fmt.Sprintf("Slot %d — %s (%s)", s.ID, s.Token.Label, s.Token.Serial)
}

func (p *TokensPage) showDetails() {
	p.mu.Lock()
	st := p.state
	p.mu.Unlock()
	if p.selected < 0 || p.selected >= len(st.slots) {
		p.details.Objects = []fyne.CanvasObject{widget.NewLabel("No token selected.")}
		p.details.Refresh()
		return
	}
	s := st.slots[p.selected]
	form := widget.NewForm(widget.NewFormItem("Slot", wrapLabel(fmt.Sprintf("%d — %s", s.ID, s.Description))))
	if s.Token == nil {
		p.details.Objects = []fyne.CanvasObject{form}
		p.details.Refresh()
		return
	}
	ti := s.Token
	uri := hsm.URI{Token: ti.Label, Serial: ti.Serial}
	for _, it := range []struct{ k, v string }{
		{"Label", ti.Label}, {"Serial", ti.Serial}, {"Manufacturer", ti.Manufacturer}, {"Model", ti.Model},
		{"PIN length", fmt.Sprintf("%d–%d", ti.MinPINLen, ti.MaxPINLen)},
		{"Flags", strings.Join(ti.Flags(), ", ")},
		{"URI", uri.String()},
	} {
		l := wrapLabel(it.v)
		l.Selectable = true
		form.Append(it.k, l)
	}
	if ti.UserPINLocked || ti.SOPINLocked || ti.UserPINFinalTry {
		warn := wrapLabel("A PIN is locked or on its final try. Do not try PINs; follow the token's recovery procedure.")
		warn.Importance = widget.DangerImportance
		form.Append("Warning", warn)
	}
	note := wrapLabel("A blank token is initialised only through a root-generation ceremony, so its PINs are split among the custodians from the start.")
	tabs := container.NewAppTabs(
		container.NewTabItem("Token", container.NewVScroll(container.NewVBox(form, note))),
		container.NewTabItem(fmt.Sprintf("Mechanisms (%d)", len(st.mechs[s.ID])), mechanismList(st.mechs[s.ID])),
		container.NewTabItem("Keys", p.keysView(s)),
	)
	tabs.SelectIndex(p.tab)
	tabs.OnSelected = func(*container.TabItem) { p.tab = tabs.SelectedIndex() }
	p.details.Objects = []fyne.CanvasObject{tabs}
	p.details.Refresh()
}

func mechanismList(mechs []hsm.MechanismInfo) fyne.CanvasObject {
	return widget.NewList(
		func() int { return len(mechs) },
		func() fyne.CanvasObject { return widget.NewLabel("CKM_RSA_PKCS_KEY_PAIR_GEN 1024–4096 sign, verify") },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			m := mechs[id]
			size := ""
			if m.MaxKeySize > 0 {
				size = fmt.Sprintf(" %d–%d", m.MinKeySize, m.MaxKeySize)
			}
			o.(*widget.Label).SetText(fmt.Sprintf("%s%s  [%s]", m.Name, size, strings.Join(m.Flags, ", ")))
		},
	)
}

// keysView lists the token's keys. Private keys are visible only after a user
// login, which asks for the PIN; the PIN is cleared as soon as it is used.
func (p *TokensPage) keysView(s hsm.Slot) fyne.CanvasObject {
	login := widget.NewButtonWithIcon("Log in to list keys…", theme.LoginIcon(), func() { p.askPINAndListKeys(s) })
	intro := wrapLabel("Listing keys needs the token's user PIN. On a ceremony token the PIN is split among the custodians: list its keys during a ceremony instead.")
	if p.keys == nil {
		return container.NewVBox(intro, container.NewHBox(login))
	}
	rows := p.keys
	list := widget.NewList(
		func() int { return len(rows) },
		func() fyne.CanvasObject {
			title := widget.NewLabel("label")
			title.TextStyle = fyne.TextStyle{Bold: true}
			return container.NewVBox(title, wrapLabel("attrs"), wrapLabel("fingerprint"))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			k := rows[id]
			box := o.(*fyne.Container)
			box.Objects[0].(*widget.Label).SetText(fmt.Sprintf("%s — %s %s", k.Label, k.Class, k.Type))
			box.Objects[1].(*widget.Label).SetText(fmt.Sprintf("ID %s · sensitive %v · extractable %v", k.ID, k.Sensitive, k.Extractable))
			fp := "secret key: no public fingerprint"
			if len(k.Fingerprint) > 0 {
				fp = "SHA-256(SPKI) " + hex.EncodeToString(k.Fingerprint) + "\n" + words.String(k.Fingerprint)
			}
			box.Objects[2].(*widget.Label).SetText(fp)
		},
	)
	list.OnSelected = func(id widget.ListItemID) {} // rows grow with wrapped text
	for i := range rows {
		list.SetItemHeight(i, 150)
	}
	header := wrapLabel(fmt.Sprintf("%d keys. Read fingerprints aloud as words when comparing with a transcript.", len(rows)))
	return container.NewBorder(header, nil, nil, nil, list)
}

func (p *TokensPage) askPINAndListKeys(s hsm.Slot) {
	pin := widget.NewPasswordEntry()
	pin.SetPlaceHolder("user PIN")
	dialog.ShowForm(fmt.Sprintf("Log in to %q", s.Token.Label), "List keys", "Cancel",
		[]*widget.FormItem{widget.NewFormItem("PIN", pin)},
		func(ok bool) {
			secret := []byte(pin.Text)
			pin.SetText("") // the entry's own string cannot be wiped; drop our reference
			if !ok {
				clear(secret)
				return
			}
			p.status.SetText("Reading keys…")
			go func() {
				rows, err := p.listKeys(s, secret)
				clear(secret)
				fyne.Do(func() {
					if err != nil {
						dialog.ShowError(err, p.win)
						p.status.SetText("Could not list keys.")
						return
					}
					p.keys = rows
					p.status.SetText(fmt.Sprintf("%d keys on %q", len(rows), s.Token.Label))
					p.showDetails()
				})
			}()
		}, p.win)
}

func (p *TokensPage) listKeys(s hsm.Slot, pin []byte) ([]*keyRow, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mod == nil {
		return nil, fmt.Errorf("the module is not open; press Refresh")
	}
	slot := s.ID
	tok, err := p.mod.OpenToken(hsm.URI{SlotID: &slot, Token: s.Token.Label})
	if err != nil {
		return nil, err
	}
	defer tok.Close()
	if err := tok.Login(pin); err != nil {
		return nil, err
	}
	keys, err := tok.FindKeys(hsm.Filter{})
	if err != nil {
		return nil, err
	}
	rows := make([]*keyRow, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, &keyRow{Label: k.Label(), Class: k.Class().String(), Type: k.Type().String(), ID: hex.EncodeToString(k.ID()),
			Sensitive: k.Sensitive(), Extractable: k.Extractable(), Fingerprint: k.Fingerprint()})
	}
	return rows, nil
}

func wrapLabel(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
