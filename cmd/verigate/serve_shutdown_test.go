package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestShutdownCutsWhatOutlivesTheGrace: a connection opened and never used
// (net/http takes such a one for idle only after 5 s, longer than the
// grace) is cut when the grace ends, and the server stops without an
// error: cutting it is what the grace is for.
func TestShutdownCutsWhatOutlivesTheGrace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveHTTP(ctx, ln, http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler))
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server has accepted it once a request on another connection is
	// answered (Serve accepts in order).
	if res, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		res.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveHTTP: %v", err)
		}
	case <-time.After(shutdownGrace + 10*time.Second):
		t.Fatal("serveHTTP did not return after its grace")
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the unused connection is still open")
	}
}
