package sip

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/ivr"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// callMedia is what the call script needs of the RTP session;
// *MediaSession satisfies it.
type callMedia interface {
	Play(ctx context.Context, g711 []byte) error
	Silence(ctx context.Context, d time.Duration) error
	Digits() <-chan rune
	Timeout() <-chan struct{}
	Codec() audio.Codec
}

// How a call's script ended.
type callEnd int

const (
	endLocal   callEnd = iota // the script hung up
	endRemote                 // the phone hung up (or the Caller closed)
	endSilence                // no RTP from the phone for the silence timeout
)

var (
	errHungUp  = errors.New("call ended")
	errSilence = errors.New("no rtp")
)

// runScript runs the ivr call script over the call's media: the select loop
// is here, the decisions are ivr's. Gather works as Twilio's <Gather> with
// nested prompts: keys pressed while the prompt before it plays stop the
// prompt and count (barge-in); then keys are collected until the finish
// key, MaxDigits keys, or Timeout without a key. Unlike Twilio, keys count
// only from the first prompt asking for one (see play).
func (cl *call) runScript(ctx context.Context, ms callMedia) callEnd {
	s := cl.script()
	r := &scriptRun{cl: cl, ms: ms}
	st, acts := ivr.Start(s)
	for {
		ev, err := r.execute(ctx, acts)
		switch {
		case errors.Is(err, errSilence):
			return endSilence
		case err != nil:
			return endRemote
		case ev == nil:
			return endLocal
		}
		st, acts = ivr.Step(s, st, ev)
	}
}

// script is the ivr script the call runs.
func (cl *call) script() ivr.Script {
	return ivr.Script{Mode: cl.v.Mode, Code: cl.v.Code, MaxPrompts: cl.c.opt.MaxPrompts, KeyTimeout: cl.c.opt.KeyTimeout}
}

// scriptRun is the transport state of one call's script.
type scriptRun struct {
	cl *call
	ms callMedia
	// pending holds keys pressed before a Gather asked for them (once the
	// call has asked for a key at all).
	pending []rune
	// asked is set when the first prompt asking for a key starts; keys
	// before it are dropped.
	asked bool
}

// execute runs acts in order. It returns the event that a Gather ended
// with, nil when the actions end the call (Hangup, or nothing left to do),
// or errHungUp / errSilence when the call ended under it.
func (r *scriptRun) execute(ctx context.Context, acts []ivr.Action) (ivr.Event, error) {
	for i, a := range acts {
		switch a := a.(type) {
		case ivr.Report:
			r.cl.log.Info("call outcome", "event", a.Event, "reason", a.Detail)
			r.cl.send(a.Event, 0, a.Detail, a.Outcome)
		case ivr.Play:
			bargeIn := i+1 < len(acts)
			if bargeIn {
				_, bargeIn = acts[i+1].(ivr.Gather)
			}
			if err := r.play(ctx, a.Prompts, bargeIn); err != nil {
				return nil, err
			}
		case ivr.Gather:
			return r.gather(ctx, a)
		case ivr.Hangup:
			return nil, nil
		}
	}
	return nil, nil
}

// play speaks ids in order, prompts.Gap apart. Keys count only once the
// call has asked for one: from the start of the first prompt that asks
// (the last of a Play followed by a Gather, "press # to confirm"). Keys
// heard before it (during the greeting and the pause after it, or queued
// since before the answer) were pressed before the person heard what they
// confirm; they are dropped, and do not cut the greeting short. Once asked,
// with bargeIn (a Gather follows) a key stops the playback and is kept for
// the Gather; without, keys wait in pending.
func (r *scriptRun) play(ctx context.Context, ids []prompts.ID, bargeIn bool) error {
	for i, id := range ids {
		if bargeIn && len(r.pending) > 0 {
			return nil
		}
		if i > 0 {
			gap := func(ctx context.Context) error { return r.ms.Silence(ctx, prompts.Gap) }
			if err := r.playOne(ctx, gap, r.keys(bargeIn)); err != nil {
				return err
			}
			if bargeIn && len(r.pending) > 0 {
				return nil
			}
		}
		audio, err := r.cl.c.opt.Audio.Audio(r.cl.v.Locale, id, r.ms.Codec())
		if err != nil {
			r.cl.log.Error("prompt audio missing", "prompt", logName(id), "locale", r.cl.v.Locale)
			continue
		}
		if bargeIn && i == len(ids)-1 {
			r.asked = true
		}
		r.cl.log.Info("call prompt", "prompt", logName(id))
		speak := func(ctx context.Context) error { return r.ms.Play(ctx, audio) }
		if err := r.playOne(ctx, speak, r.keys(bargeIn)); err != nil {
			return err
		}
	}
	return nil
}

// keyMode is what playOne does with a key.
type keyMode int

const (
	dropKeys  keyMode = iota // not asked for yet
	keepKeys                 // kept in pending for a later Gather
	bargeKeys                // kept, and the playback stops
)

// keys returns the key mode for a playback now.
func (r *scriptRun) keys(bargeIn bool) keyMode {
	switch {
	case !r.asked:
		return dropKeys
	case bargeIn:
		return bargeKeys
	}
	return keepKeys
}

// logName is how a prompt appears in the log: a digit's prompt is only
// "digit", since in code mode the digits are the code.
func logName(id prompts.ID) string {
	if strings.HasPrefix(string(id), "digit_") {
		return "digit"
	}
	return string(id)
}

// playOne runs one playback (a prompt or a pause) while watching for keys,
// the media timeout and the end of the call; mode says what a key does.
func (r *scriptRun) playOne(ctx context.Context, send func(ctx context.Context) error, mode keyMode) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- send(pctx) }()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return errHungUp
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				return errHungUp // the session closed under the call
			}
			return nil
		case d := <-r.ms.Digits():
			if mode == dropKeys {
				r.cl.log.Info("call key ignored: not asked for yet")
				continue
			}
			r.pending = append(r.pending, d)
			if mode == bargeKeys {
				cancel()
				<-done
				return nil
			}
		case <-r.ms.Timeout():
			cancel()
			<-done
			return errSilence
		case <-ctx.Done():
			<-done
			return errHungUp
		}
	}
}

// gather collects keys as Twilio's <Gather> does.
func (r *scriptRun) gather(ctx context.Context, g ivr.Gather) (ivr.Event, error) {
	var got []rune
	take := func(d rune) ivr.Event {
		r.cl.log.Info("call key pressed", "key", string(d))
		r.cl.report(verify.EventKeyPressed, 0, string(d))
		if strings.ContainsRune(g.FinishOnKey, d) {
			return ivr.Input{Digits: string(got), Finished: true}
		}
		got = append(got, d)
		if g.MaxDigits > 0 && len(got) >= g.MaxDigits {
			return ivr.Input{Digits: string(got)}
		}
		return nil
	}
	for len(r.pending) > 0 {
		d := r.pending[0]
		r.pending = r.pending[1:]
		if ev := take(d); ev != nil {
			return ev, nil
		}
	}
	// ivr.Script decides the default: its gathers always carry a timeout.
	timeout := g.Timeout
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case d := <-r.ms.Digits():
			if ev := take(d); ev != nil {
				return ev, nil
			}
			timer.Reset(timeout)
		case <-timer.C:
			if len(got) == 0 {
				r.cl.log.Info("call heard no key", "waited", timeout)
				return ivr.Silence{}, nil
			}
			return ivr.Input{Digits: string(got)}, nil
		case <-r.ms.Timeout():
			return nil, errSilence
		case <-ctx.Done():
			return nil, errHungUp
		}
	}
}
