package main

import (
	"net/http"
	"testing"
)

// TestServeDevLongPollCall: under serve --dev (in-memory state) a long-poll
// answers when the built-in test phone presses # on the approve-mode call.
func TestServeDevLongPollCall(t *testing.T) {
	base, key, _ := startDevServe(t, "")
	status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+442079460000","channel":"call","call_mode":"approve"}`)
	if status != http.StatusCreated || v["status"] != "pending" {
		t.Fatalf("start: %d %v", status, v)
	}
	status, v = call(t, "GET", base+"/v1/verifications/"+v["id"].(string)+"?wait=60s", key, "")
	if status != http.StatusOK || v["status"] != "approved" {
		t.Fatalf("long-poll: %d %v, want 200 approved once the phone pressed #", status, v)
	}
}
