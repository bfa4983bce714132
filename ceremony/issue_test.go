package ceremony

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// dyingDeliverer stops the ceremony when the share of the custodian at
// index stop is about to be delivered, as a crash would, and records the
// confirmations it is asked for.
type dyingDeliverer struct {
	*typist
	stop      int
	delivered int
	asked     []string
	informed  []Notice
}

func (d *dyingDeliverer) DeliverShare(ctx context.Context, r DeliveryRequest) (Delivery, error) {
	d.delivered++
	if d.delivered == d.stop {
		return Delivery{}, ErrAborted
	}
	return d.typist.DeliverShare(ctx, r)
}

func (d *dyingDeliverer) Confirm(ctx context.Context, r ConfirmRequest) ([]Confirmation, error) {
	d.asked = append(d.asked, r.Statement)
	return d.typist.Confirm(ctx, r)
}

func (d *dyingDeliverer) Inform(ctx context.Context, n Notice) error {
	d.informed = append(d.informed, n)
	return d.typist.Inform(ctx, n)
}

// TestAbandonedSharesAreDestroyed: a ceremony that dies while shares are
// handed out leaves two custodians with cards of a quorum that will never be
// used. The transcript recorded both deliveries before they happened; the
// rerun names the two custodians, has each confirm they destroyed their
// card, records it, and issues a new quorum, which the old cards do not
// unlock.
func TestAbandonedSharesAreDestroyed(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "out")
	s := w.rootCardsScript(out, "backup: true", "backup: false")
	first := &dyingDeliverer{typist: w.cardsOnly("old"), stop: 3}
	if _, err := w.run(s, first, Options{}); !errors.Is(err, ErrAborted) {
		t.Fatalf("the ceremony did not stop while issuing: %v", err)
	}
	rep, err := transcript.Verify(filepath.Join(out, "example-root-2026.transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, en := range rep.Entries {
		if en.Step == stepShareDelivery {
			recorded = append(recorded, en.Detail("custodian")+" "+en.Detail("card"))
		}
	}
	if len(recorded) != 2 || !strings.HasPrefix(recorded[0], "Carol Chen "+w.delivery("old", "Carol Chen").Card) || !strings.HasPrefix(recorded[1], "Dan Diaz ") {
		t.Fatalf("deliveries recorded before they happened: %v", recorded)
	}
	oldCard := w.delivery("old", "Carol Chen").Card
	if _, err := os.Stat(oldCard); err != nil {
		t.Fatal(err)
	}

	second := &dyingDeliverer{typist: w.cardsOnly("new", "Carol Chen", "Erin Evans", "Dan Diaz")}
	second.turns = append([]turn{{custodian: "Carol Chen", prefix: "old"}}, second.turns...)
	if _, err := w.run(s, second, Options{}); err != nil {
		t.Fatalf("rerun: %v\n%s", err, w.log.String())
	}
	var destroyNotice *Notice
	for i, n := range second.informed {
		if strings.HasPrefix(n.Title, "Destroy the shares of the abandoned quorum") {
			destroyNotice = &second.informed[i]
		}
	}
	if destroyNotice == nil || len(destroyNotice.Facts) != 2 || destroyNotice.Facts[0].Label != "Carol Chen" || !strings.Contains(destroyNotice.Facts[0].Value, oldCard) {
		t.Fatalf("the rerun did not name the custodians holding abandoned cards: %+v", destroyNotice)
	}
	confirmed := 0
	for _, st := range second.asked {
		if strings.HasPrefix(st, "I, Carol Chen, destroyed share 1 of the abandoned quorum set") || strings.HasPrefix(st, "I, Dan Diaz, destroyed share 2 of the abandoned quorum set") {
			confirmed++
		}
	}
	if confirmed != 2 {
		t.Errorf("%d custodians confirmed destroying their abandoned card: %q", confirmed, second.asked)
	}
	rep, err = transcript.Verify(filepath.Join(out, "example-root-2026.transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var destroyed []string
	issued := entryByStep(t, rep, "issue-shares")
	for _, en := range rep.Entries {
		if en.Step == stepShareDestroyed {
			if en.Seq > issued.Seq || len(en.Actors) != 1 || en.Actors[0].Name != en.Detail("custodian") {
				t.Errorf("destruction entry %d: %+v", en.Seq, en)
			}
			destroyed = append(destroyed, en.Detail("custodian"))
		}
	}
	if strings.Join(destroyed, ",") != "Carol Chen,Dan Diaz" {
		t.Errorf("destructions recorded: %v", destroyed)
	}
	// Carol's first attempt at the unlock was her abandoned card: refused.
	if unlock := entryByStep(t, rep, "unlock"); !strings.Contains(unlock.Detail("share refused"), "issued with another quorum record") {
		t.Errorf("the abandoned card at the unlock: %v", unlock.Details)
	}
}

// TestPresenterNotInRecord: a share presented under a name that is not a
// custodian of the quorum record is refused, and the name typed never
// reaches the transcript.
func TestPresenterNotInRecord(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "out")
	s := w.rootCardsScript(out, "backup: true", "backup: false")
	p := w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans")
	p.turns = append([]turn{{custodian: "Mallory Typed-This", card: "Carol Chen"}}, p.turns...)
	if _, err := w.run(s, p, Options{}); err != nil {
		t.Fatalf("%v\n%s", err, w.log.String())
	}
	raw, _ := os.ReadFile(filepath.Join(out, "example-root-2026.transcript.jsonl"))
	if strings.Contains(string(raw), "Mallory") {
		t.Error("a typed presenter name reached the transcript")
	}
	if len(p.seen) == 0 || !strings.Contains(p.seen[0], "not a custodian of the quorum record") {
		t.Errorf("refusal shown: %v", p.seen)
	}
}

// TestModuleHashRecordedAndPinned: the token step records the SHA-256 of the
// PKCS#11 library it loaded; a script that pins another hash does not start.
func TestModuleHashRecordedAndPinned(t *testing.T) {
	w := newWorld(t, "Root 2026")
	raw, err := os.ReadFile(w.module)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(w.dir, "out")
	s := w.rootCardsScript(out, "backup: true", "backup: false", "  enrol: change-pin\n", "  enrol: change-pin\n  module_sha256: "+hashOf(raw)+"\n")
	res, err := w.run(s, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, w.log.String())
	}
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	tok := entryByStep(t, rep, "token")
	if tok.Detail("module sha256") != hashOf(raw) || len(tok.Inputs) != 1 || tok.Inputs[0].Path != w.module {
		t.Errorf("token entry: %v %v", tok.Details, tok.Inputs)
	}
	other := w.rootCardsScript(filepath.Join(w.dir, "out2"), "backup: true", "backup: false", "  enrol: change-pin\n", "  enrol: change-pin\n  module_sha256: "+strings.Repeat("ab", 32)+"\n")
	if _, err := New(other, Options{UnattendedTest: true, Prompter: w.answers("x")}); err == nil || !strings.Contains(err.Error(), "token.module_sha256: the PKCS#11 module") {
		t.Errorf("a pinned module of another hash: %v", err)
	}
}

// linkDeliverer gives, for the first share, a destination through a
// symbolic link on the custodian's medium that leads into the output
// directory, then the custodian's real destination.
type linkDeliverer struct {
	*typist
	link     string
	problems []string
}

func (d *linkDeliverer) DeliverShare(ctx context.Context, r DeliveryRequest) (Delivery, error) {
	if r.Problem != "" {
		d.problems = append(d.problems, r.Problem)
		r.Problem = ""
	} else if len(d.problems) == 0 {
		return Delivery{CardPath: filepath.Join(d.link, "carol.card.pdf")}, nil
	}
	return d.typist.DeliverShare(ctx, r)
}

// TestShareDestinationThroughLink: a share destination is compared with the
// output directory after symbolic links are resolved on both sides.
func TestShareDestinationThroughLink(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "out")
	s := w.rootCardsScript(out, "backup: true", "backup: false")
	link := filepath.Join(w.media, "usb-stick")
	if err := os.Symlink(out, link); err != nil {
		t.Fatal(err)
	}
	d := &linkDeliverer{typist: w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), link: link}
	if _, err := w.run(s, d, Options{}); err != nil {
		t.Fatalf("%v\n%s", err, w.log.String())
	}
	if len(d.problems) != 1 || !strings.Contains(d.problems[0], "is inside the ceremony output directory") {
		t.Fatalf("a destination through a link into the output directory: %v", d.problems)
	}
	if _, err := os.Stat(filepath.Join(out, "carol.card.pdf")); err == nil {
		t.Fatal("a share card was written into the output directory")
	}
}
