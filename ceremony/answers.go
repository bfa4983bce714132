package ceremony

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Answers is a Prompter that answers from a file instead of from people.
//
// It exists for automated tests and rehearsals ONLY: it confirms on behalf of
// participants who are not there, and it holds passphrases and PINs as
// plain text. A production ceremony uses the terminal or the GUI.
//
//	confirm: true                 # every confirmation is answered yes
//	decline: [clock]              # ...except at these steps (tests)
//	deliver:                      # where each custodian's share goes
//	  Carol Chen: {card: /media/carol/card.pdf, file: /media/carol/share.age, passphrase: "..."}
//	present:                      # shares presented at an unlock, in order
//	  - {custodian: Carol Chen}   # her delivered file and passphrase
//	  - {custodian: Dan Diaz, text: "ABCD EFGH ..."}
//	  - {custodian: Erin Evans, file: /media/erin/share.age, passphrase: "..."}
//	present_recovery:             # the same, at an unlock of the recovery quorum
//	  - {custodian: Ivan Ito, text: "..."}
//	pins: {so: "...", user: "..."} # current PINs of a token enrolled with change-pin
type Answers struct {
	ConfirmAll bool                      `yaml:"confirm"`
	Decline    []string                  `yaml:"decline"`
	Deliver    map[string]AnswerDelivery `yaml:"deliver"`
	Present    []AnswerShare             `yaml:"present"`
	// PresentRecovery are the shares presented at an unlock of the recovery quorum.
	PresentRecovery []AnswerShare `yaml:"present_recovery"`
	PINs            struct {
		SO   string `yaml:"so"`
		User string `yaml:"user"`
	} `yaml:"pins"`

	// Log, when set, receives a readable account of what was asked and answered.
	Log io.Writer `yaml:"-"`

	next int
}

// recoveryQuorumName is how requests name the recovery quorum.
const recoveryQuorumName = "recovery quorum"

// AnswerDelivery is where one custodian's share goes.
type AnswerDelivery struct {
	Card       string `yaml:"card"`
	File       string `yaml:"file"`
	Passphrase string `yaml:"passphrase"`
}

// AnswerShare is one presented share.
type AnswerShare struct {
	Custodian  string `yaml:"custodian"`
	Text       string `yaml:"text"`
	File       string `yaml:"file"`
	Passphrase string `yaml:"passphrase"`
}

// LoadAnswers reads an answers file (strict YAML: unknown keys are errors).
func LoadAnswers(path string) (*Answers, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read answers: %w", err)
	}
	var a Answers
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("answers file %s: %w", path, err)
	}
	return &a, nil
}

// Unattended: an answers file answers on behalf of people who are not there.
func (a *Answers) Unattended() bool { return true }

func (a *Answers) logf(format string, args ...any) {
	if a.Log != nil {
		fmt.Fprintf(a.Log, format+"\n", args...)
	}
}

func (a *Answers) StepStarted(ctx context.Context, s StepInfo) error {
	a.logf("== Step %d/%d: %s [%s]", s.Number, s.Total, s.Title, s.ID)
	return ctx.Err()
}

func (a *Answers) Inform(ctx context.Context, n Notice) error {
	a.logf("-- %s", n.Title)
	if n.Warning != "" {
		a.logf("   WARNING: %s", n.Warning)
	}
	for _, f := range n.Facts {
		a.logf("   %s: %s", f.Label, f.Value)
		if f.Words != "" {
			a.logf("   %s (words): %s", f.Label, f.Words)
		}
	}
	return ctx.Err()
}

func (a *Answers) Confirm(ctx context.Context, r ConfirmRequest) ([]Confirmation, error) {
	for _, d := range a.Decline {
		if d == r.Step {
			a.logf("   declined by %s (answers file)", r.Required[0].Name)
			return nil, fmt.Errorf("%w by %s (answers file declines step %s)", ErrDeclined, r.Required[0].Name, r.Step)
		}
	}
	if !a.ConfirmAll {
		return nil, fmt.Errorf("%w: the answers file does not confirm (set confirm: true)", ErrDeclined)
	}
	out := make([]Confirmation, len(r.Required))
	for i, p := range r.Required {
		out[i] = Confirmation{Name: p.Name, Role: p.Role, Time: time.Now()}
	}
	a.logf("   confirmed by %d: %s", len(out), r.Statement)
	return out, ctx.Err()
}

func (a *Answers) DeliverShare(ctx context.Context, r DeliveryRequest) (Delivery, error) {
	if r.Problem != "" {
		return Delivery{}, fmt.Errorf("answers file: the destination for %s was refused: %s", r.Custodian, r.Problem)
	}
	d, ok := a.Deliver[r.Custodian]
	if !ok {
		return Delivery{}, fmt.Errorf("answers file has no deliver entry for %s", r.Custodian)
	}
	a.logf("   share %d of %d to %s", r.Index, r.Custodians, r.Custodian)
	return Delivery{CardPath: d.Card, FilePath: d.File, Passphrase: []byte(d.Passphrase)}, ctx.Err()
}

func (a *Answers) PresentShare(ctx context.Context, r ShareRequest) (ShareInput, error) {
	if r.Have == 0 && r.Problem == "" {
		a.next = 0 // a new unlock starts from the top of the list
	}
	if r.Problem != "" {
		a.logf("   refused: %s", r.Problem)
	}
	list := a.Present
	if r.Quorum == recoveryQuorumName {
		list = a.PresentRecovery
	}
	if a.next >= len(list) {
		return ShareInput{}, fmt.Errorf("the answers file has no more shares of the %s to present", r.Quorum)
	}
	s := list[a.next]
	a.next++
	in := ShareInput{Custodian: s.Custodian, Text: []byte(s.Text), File: s.File, Passphrase: []byte(s.Passphrase)}
	if s.Text == "" && s.File == "" {
		d := a.Deliver[s.Custodian]
		in.File, in.Passphrase = d.File, []byte(d.Passphrase)
	}
	a.logf("   share presented by %s (%d of %d so far)", s.Custodian, r.Have, r.Need)
	return in, ctx.Err()
}

func (a *Answers) Secret(ctx context.Context, r SecretRequest) ([]byte, error) {
	v := a.PINs.User
	if r.Kind == "so-pin" {
		v = a.PINs.SO
	}
	if v == "" {
		return nil, fmt.Errorf("the answers file has no %s", r.Kind)
	}
	return []byte(v), ctx.Err()
}
