package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestHelpListsSubcommands(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if !strings.Contains(out.String(), c.name) {
			t.Errorf("--help does not list %q:\n%s", c.name, out.String())
		}
	}
}

func TestUnknownSubcommand(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("error %v, want one naming the subcommand", err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "verigate ") {
		t.Fatalf("version printed %q", out.String())
	}
}
