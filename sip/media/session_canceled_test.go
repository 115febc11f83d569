package media

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
)

// TestSessionCanceledContext: a session handed a context that is
// already over closes itself at once, without racing its constructor
// (run with -race): context.AfterFunc runs the close before
// NewSession has finished setting the session up.
func TestSessionCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 50 {
		peer := listenLoopback(t)
		s, err := NewSession(ctx, Config{Conn: listenLoopback(t), Remote: addrOf(peer), Codec: audio.PCMU})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a session on a canceled context did not close")
		}
		if err := s.Play(t.Context(), make([]byte, FrameSamples)); !errors.Is(err, ErrSessionClosed) {
			t.Fatalf("play on a closed session: %v, want ErrSessionClosed", err)
		}
		_ = s.Close() // the owner's Close after the context's is harmless
		_ = peer.Close()
	}
}
