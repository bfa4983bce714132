package ui

import (
	"context"
	"sync"

	"github.com/keyceremony/keyceremony/ceremony"
)

// guiPrompter implements ceremony.Prompter on top of the wizard. The engine
// calls it from its own goroutine; each call puts a panel on screen through
// fyne.Do and blocks until the people in the room answer, the operator stops
// the ceremony, or ctx ends.
type guiPrompter struct {
	wz *Wizard

	mu      sync.Mutex
	pending string // kind of the panel waiting for an answer, for tests
}

// answer is what a panel sends back.
type answer struct {
	value any
	err   error
}

// ask shows a panel built by show (on the UI goroutine) and waits for its answer.
func (p *guiPrompter) ask(ctx context.Context, kind string, show func(reply func(any, error))) (any, error) {
	ch := make(chan answer, 1)
	var once sync.Once
	reply := func(v any, err error) {
		once.Do(func() {
			p.setPending("")
			ch <- answer{v, err}
		})
	}
	doOnUI(func() {
		p.wz.setAbort(func() { reply(nil, ceremony.ErrAborted) })
		show(reply)
		// Pending changes only once the panel is on screen, so a reader of
		// Pending (tests, accessibility tools) always finds the panel it names.
		p.setPending(kind)
	})
	select {
	case a := <-ch:
		return a.value, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *guiPrompter) setPending(kind string) {
	p.mu.Lock()
	p.pending = kind
	p.mu.Unlock()
}

// Pending says which kind of answer the wizard waits for ("" when none).
func (p *guiPrompter) Pending() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending
}

func (p *guiPrompter) StepStarted(ctx context.Context, s ceremony.StepInfo) error {
	doOnUI(func() { p.wz.showStep(s) })
	return ctx.Err()
}

func (p *guiPrompter) Inform(ctx context.Context, n ceremony.Notice) error {
	_, err := p.ask(ctx, "inform", func(reply func(any, error)) { p.wz.showNotice(n, reply) })
	return err
}

func (p *guiPrompter) Confirm(ctx context.Context, r ceremony.ConfirmRequest) ([]ceremony.Confirmation, error) {
	v, err := p.ask(ctx, "confirm", func(reply func(any, error)) { p.wz.showConfirm(r, reply) })
	if err != nil {
		return nil, err
	}
	return v.([]ceremony.Confirmation), nil
}

func (p *guiPrompter) DeliverShare(ctx context.Context, r ceremony.DeliveryRequest) (ceremony.Delivery, error) {
	v, err := p.ask(ctx, "deliver", func(reply func(any, error)) { p.wz.showDelivery(r, reply) })
	if err != nil {
		return ceremony.Delivery{}, err
	}
	return v.(ceremony.Delivery), nil
}

func (p *guiPrompter) PresentShare(ctx context.Context, r ceremony.ShareRequest) (ceremony.ShareInput, error) {
	v, err := p.ask(ctx, "present", func(reply func(any, error)) { p.wz.showPresent(r, reply) })
	if err != nil {
		return ceremony.ShareInput{}, err
	}
	return v.(ceremony.ShareInput), nil
}

func (p *guiPrompter) Secret(ctx context.Context, r ceremony.SecretRequest) ([]byte, error) {
	v, err := p.ask(ctx, "secret", func(reply func(any, error)) { p.wz.showSecret(r, reply) })
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}
