package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// defaultProgressEvery is how often a long command says how far it is.
const defaultProgressEvery = 5 * time.Second

// progressFlags are --progress and --progress-every of a long command.
type progressFlags struct {
	fs    *flag.FlagSet
	on    *bool
	every *time.Duration
}

func addProgressFlags(fs *flag.FlagSet) progressFlags {
	return progressFlags{
		fs:    fs,
		on:    fs.Bool("progress", false, "print progress to standard error (default: when standard error is a terminal; --progress=false never)"),
		every: fs.Duration("progress-every", defaultProgressEvery, "how often --progress prints a line"),
	}
}

// start begins printing progress to stderr, when asked for with
// --progress or, without the flag, when stderr is a terminal: never to
// stdout, which may carry --json. line says what the command has done by
// elapsed. stop ends it (and is safe to call when progress is off).
func (p progressFlags) start(stderr io.Writer, name string, line func(elapsed time.Duration) string) (stop func()) {
	on, given := *p.on, false
	p.fs.Visit(func(f *flag.Flag) { given = given || f.Name == "progress" })
	if !given {
		on = isTerminal(stderr)
	}
	if !on || *p.every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	begin := time.Now()
	wg.Go(func() {
		t := time.NewTicker(*p.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				elapsed := time.Since(begin)
				fmt.Fprintf(stderr, "%s: %s: %s\n", name, elapsed.Round(time.Second), line(elapsed))
			}
		}
	})
	return sync.OnceFunc(func() {
		close(done)
		wg.Wait()
	})
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// perSecond is n over elapsed, 0 before any time has passed.
func perSecond(n int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(n) / elapsed.Seconds()
}
