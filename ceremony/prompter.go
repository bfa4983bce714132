package ceremony

import (
	"context"
	"errors"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/script"
)

// Prompter is how the engine talks to the people in the room. The terminal
// (app/cli), the answers file (Answers, for tests and rehearsals) and the GUI
// each implement it. Every method blocks until the people have answered or ctx
// is cancelled; an implementation returns ErrAborted when the operator stops
// the ceremony. The engine calls the methods from one goroutine, in order.
//
// Secrets cross this interface only as []byte: the engine wipes what it
// receives once used, and implementations should not keep copies.
type Prompter interface {
	// StepStarted announces the step about to run, with its description.
	StepStarted(ctx context.Context, s StepInfo) error
	// Inform shows facts to read aloud or note (hashes, word lists,
	// warnings). It does not wait for an answer beyond acknowledgment.
	Inform(ctx context.Context, n Notice) error
	// Confirm asks each named person in r.Required to confirm r.Statement and
	// returns their confirmations in the same order. A person who declines
	// makes it return an error wrapping ErrDeclined.
	Confirm(ctx context.Context, r ConfirmRequest) ([]Confirmation, error)
	// DeliverShare asks where one custodian's share goes: the card PDF path
	// and/or the share file path plus the passphrase that encrypts it. The
	// engine writes the files and wipes the passphrase.
	DeliverShare(ctx context.Context, r DeliveryRequest) (Delivery, error)
	// PresentShare asks the next custodian for a share, typed or as a file
	// plus passphrase. r.Problem says why the previous attempt was refused.
	PresentShare(ctx context.Context, r ShareRequest) (ShareInput, error)
	// Secret asks an operator for a secret that is not quorum-held, such as
	// the current PIN of a token being enrolled. The engine wipes the result.
	Secret(ctx context.Context, r SecretRequest) ([]byte, error)
}

// Errors a Prompter returns.
var (
	// ErrAborted: the operator stopped the ceremony; it can be resumed.
	ErrAborted = errors.New("ceremony stopped by the operator")
	// ErrDeclined: a participant did not confirm.
	ErrDeclined = errors.New("not confirmed")
)

// StepInfo describes a step for display.
type StepInfo struct {
	Number int    // 1-based position in the plan
	Total  int    // steps in the plan
	ID     string // stable identifier recorded in the transcript
	Title  string
	// Do is what the operator does; Check what the engine checks; Record
	// what goes into the transcript.
	Do, Check, Record string
	// Confirm lists the roles that confirm the step.
	Confirm []script.Role
	// Done is true for a step a resumed ceremony already completed.
	Done bool
}

// Fact is one labelled value in a notice or a confirmation.
type Fact struct {
	Label string
	Value string
	// Words is the value as PGP words, for hashes and fingerprints that are read aloud.
	Words string
}

// Notice is information shown during a step.
type Notice struct {
	Step    string
	Title   string
	Facts   []Fact
	Warning string
}

// Person is a participant called on to act.
type Person struct {
	Name string
	Role script.Role
}

// ConfirmRequest asks people to confirm a statement.
type ConfirmRequest struct {
	Step      string
	Statement string
	Facts     []Fact
	Required  []Person
}

// Confirmation is one person's confirmation.
type Confirmation struct {
	Name string
	Role script.Role
	Time time.Time
}

// DeliveryRequest asks where a custodian's share goes.
type DeliveryRequest struct {
	Custodian  string
	Index      int
	Custodians int
	Threshold  int
	// Media are the forms the script allows: "card" and/or "file".
	Media []string
	// Quorum says which quorum the share belongs to: "quorum" (the one that
	// unlocks the token) or "recovery quorum" (the one that opens the key backup).
	Quorum string
	// Problem says why the previous answer was refused (e.g. the file exists).
	Problem string
}

// Delivery is where a share goes. Paths must be on the custodian's own medium:
// the engine refuses paths inside the ceremony's output directory.
type Delivery struct {
	CardPath   string
	FilePath   string
	Passphrase []byte
}

// ShareRequest asks for the next share of an unlock.
type ShareRequest struct {
	Purpose   string // why the quorum is needed ("enrol the token")
	Quorum    string // "quorum" or "recovery quorum"
	Have      int    // valid shares so far
	Need      int    // threshold
	Presented []string
	// Waiting lists the custodians who have not presented a share yet.
	Waiting []string
	// Custodians are the quorum record's custodians in share-index order
	// (share i is Custodians[i-1]): a prompter lets people choose the one
	// presenting from this list, never type a name.
	Custodians []string
	Problem    string
}

// ShareInput is one presented share: Text, or File with Passphrase.
// Custodian, when set, names who presents it, as listed in
// ShareRequest.Custodians; the engine checks the share is theirs and refuses
// a name that is not in the quorum record.
type ShareInput struct {
	Custodian  string
	Text       []byte
	File       string
	Passphrase []byte
}

// wipe zeroes the secrets in a ShareInput.
func (s *ShareInput) wipe() {
	clear(s.Text)
	clear(s.Passphrase)
}

// SecretRequest asks an operator for a secret.
type SecretRequest struct {
	Step string
	// Kind says which secret: "so-pin" or "user-pin" (the token's current PINs).
	Kind   string
	Prompt string
	// Who should type it.
	Who Person
}
