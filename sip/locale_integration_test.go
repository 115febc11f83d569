package sip_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/prompttest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// recording reads what the test phone recorded of pc, as 8 kHz linear PCM,
// with the G.711 law the call negotiated.
func recording(t *testing.T, pc siptest.PhoneCall) ([]int16, audio.Codec) {
	t.Helper()
	f, err := os.Open(pc.Recording)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	defer f.Close()
	w, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	law := audio.PCMU
	if pc.Codec == audio.PCMA {
		law = audio.PCMA
	}
	return w.PCM(), law
}

// TestCodeModeLocalesOverSIP places code-mode calls in three locales and
// decodes what the test phone recorded with the locale's own clips: the
// code's digits, twice, in order. The English clips do not find the code
// in those recordings, so the call spoke the verification's locale.
func TestCodeModeLocalesOverSIP(t *testing.T) {
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatalf("prompts: %v", err)
	}
	for _, tc := range []struct{ locale, code string }{
		{"de", "407193"},
		{"ja", "582640"},
		{"fr", "916375"},
	} {
		t.Run(tc.locale, func(t *testing.T) {
			t.Parallel() // each call has its own phone, gateway and ports
			rec := filepath.Join(t.TempDir(), "heard.wav")
			phone, ended := newPhone(t, siptest.PhoneConfig{Record: rec})
			placeCall(t, phone, sip.Options{Audio: sip.PromptAudio{Catalogue: cat}},
				verify.Call{VerificationID: "v-" + tc.locale, Mode: verify.CallModeCode, Code: tc.code, Locale: tc.locale},
				verify.EventCompleted)
			pcm, law := recording(t, waitCall(t, ended, 10*time.Second))

			r, err := prompttest.NewRecogniser(cat, tc.locale, law)
			if err != nil {
				t.Fatal(err)
			}
			heard := r.Recognise(pcm)
			if want := prompts.CodeSequence(tc.code); !slices.Equal(prompttest.IDs(heard), want) {
				t.Fatalf("heard %v with the %s clips, want %v", heard, tc.locale, want)
			}
			en, err := prompttest.NewRecogniser(cat, "en", law)
			if err != nil {
				t.Fatal(err)
			}
			if got := en.Recognise(pcm); slices.Equal(prompttest.IDs(got), prompts.CodeSequence(tc.code)) {
				t.Fatalf("the English clips also read the code in the %s call: %v", tc.locale, got)
			}
		})
	}
}

// TestGermanApproveCallOverSIP starts a German approve-mode verification
// through verify.Service, as the API does: the locale travels from the
// request to the call, the phone hears the German greeting and "press the
// pound key" (they correlate with the catalogue's German clips, not the
// English ones), presses # after them, and the verification is approved.
func TestGermanApproveCallOverSIP(t *testing.T) {
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatalf("prompts: %v", err)
	}
	// The phone presses # only once both prompts are over, so neither is
	// cut short by barge-in.
	var spoken time.Duration
	for _, id := range []prompts.ID{prompts.Greeting, prompts.PressPound} {
		a, err := cat.Audio("de", id, audio.PCMU)
		if err != nil {
			t.Fatal(err)
		}
		spoken += time.Duration(len(a)) * time.Second / 8000
	}
	rec := filepath.Join(t.TempDir(), "heard.wav")
	phone, ended := newPhone(t, siptest.PhoneConfig{Record: rec, Press: "#", After: spoken + 1500*time.Millisecond})
	svc, _ := newService(t, phone)
	v, err := svc.Start(context.Background(), verify.StartRequest{Tenant: "tenant", To: "+4915123456789",
		Channel: verify.ChannelCall, CallMode: verify.CallModeApprove, Locale: "de"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Locale != "de" {
		t.Fatalf("verification locale %q, want de", v.Locale)
	}
	waitStatus(t, svc, v.ID, verify.StatusApproved)
	pcm, law := recording(t, waitCall(t, ended, 10*time.Second))

	at := -1
	for _, id := range []prompts.ID{prompts.Greeting, prompts.PressPound} {
		var offset [2]int
		var score [2]float64
		for i, locale := range []string{"de", "en"} {
			clip, err := cat.Audio(locale, id, law)
			if err != nil {
				t.Fatal(err)
			}
			offset[i], score[i] = prompttest.Peak(pcm, law.Decode(nil, clip))
		}
		t.Logf("%s: German clip %.3f at %.2fs, English clip %.3f", id, score[0], float64(offset[0])/8000, score[1])
		// The phone decodes the very G.711 bytes the gateway sent: the
		// German clip is in the recording as it is (score about 1).
		if score[0] < 0.95 || score[1] > 0.6 || score[1] >= score[0] {
			t.Errorf("%s: German clip scores %.3f, English %.3f; want the German one heard and the English one not", id, score[0], score[1])
		}
		if offset[0] <= at {
			t.Errorf("%s heard at sample %d, not after the prompt before it (%d)", id, offset[0], at)
		}
		at = offset[0]
	}
}
