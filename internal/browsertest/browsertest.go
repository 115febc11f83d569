// Package browsertest drives Debian's Chromium, headless, from Go tests
// (through chromedp and the DevTools protocol), so that pages the gateway
// serves are tested as a person's browser runs them: scripts, form posts
// across origins, Accept-Language. Each Browser has a fresh profile, a
// bounded lifetime and stops with its test; screenshots are kept as test
// artefacts.
//
// Where Chromium is missing the tests skip, except under CI=true, where
// they fail: a CI run must not pass without its browser tests.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/verigate/verigate/internal/testbuf"
)

// ArtefactsEnv names the directory screenshots are kept under (one
// subdirectory per test); a temporary directory of the test when unset.
const ArtefactsEnv = "VERIGATE_TEST_ARTEFACTS"

// Options configure a Browser. Every field may be empty.
type Options struct {
	// AcceptLanguage is the list of languages, most wanted first, without
	// weights ("de-DE,de": Chromium sends "de-DE,de;q=0.9"), for every
	// request and navigator.languages; Chromium's own when empty.
	AcceptLanguage string
	// Lifetime bounds the whole browser: 3 minutes when 0.
	Lifetime time.Duration
	// Timeout bounds each step (navigate, click, wait): 30s when 0, generous
	// because the test machines are loaded.
	Timeout time.Duration
	// ExecPath is the browser: $VERIGATE_CHROMIUM, else chromium on PATH,
	// else /usr/bin/chromium.
	ExecPath string
	// Width and Height of the window: 1280x900 when 0.
	Width, Height int
}

// Browser is one headless Chromium with one tab.
type Browser struct {
	t       testing.TB
	ctx     context.Context // the tab
	timeout time.Duration
	out     *testbuf.Buffer // Chromium's stdout and stderr, shown on failure

	mu    sync.Mutex
	dir   string // artefacts
	shots int
}

// Path finds Chromium, or returns "".
func Path() string {
	if p := os.Getenv("VERIGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// New starts a headless Chromium for the test; it stops when the test ends.
func New(t testing.TB, o Options) *Browser {
	t.Helper()
	if o.ExecPath == "" {
		o.ExecPath = Path()
	}
	if o.ExecPath == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("browsertest: chromium is missing (apt-get install chromium); CI=true, so this fails rather than skips")
		}
		t.Skip("browsertest: chromium is missing (apt-get install chromium)")
	}
	if o.Lifetime == 0 {
		o.Lifetime = 3 * time.Minute
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Width == 0 || o.Height == 0 {
		o.Width, o.Height = 1280, 900
	}
	// TempDir before the Cleanup below: cleanups run last-first, so
	// Chromium has exited before its profile is removed.
	profile := t.TempDir()
	b := &Browser{t: t, timeout: o.Timeout, out: &testbuf.Buffer{}}

	life, cancelLife := context.WithTimeout(context.Background(), o.Lifetime)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(o.ExecPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(o.Width, o.Height),
		chromedp.CombinedOutput(b.out),
		chromedp.WSURLReadTimeout(60*time.Second),
	)
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		// Cancel closes the browser and waits for the process.
		if err := chromedp.Cancel(tab); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("browsertest: closing chromium: %v", err)
		}
		cancelTab()
		cancelAlloc()
		cancelLife()
	})
	b.ctx = tab
	// The first Run starts the browser, on the tab's context itself (a
	// timeout here would end the browser with it).
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tab) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browsertest: starting %s: %v\n%s", o.ExecPath, err, b.out.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("browsertest: %s did not start in 90s\n%s", o.ExecPath, b.out.String())
	}
	if o.AcceptLanguage != "" {
		b.SetAcceptLanguage(o.AcceptLanguage)
	}
	return b
}

// Context is the tab's chromedp context, for actions the helpers lack;
// derive a timeout from it (never cancel it).
func (b *Browser) Context() context.Context { return b.ctx }

// do runs steps with the step timeout, failing the test (with a screenshot
// and Chromium's output) when they fail.
func (b *Browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

func (b *Browser) fail(what string, err error) {
	b.t.Helper()
	shot := ""
	if p, serr := b.screenshot("failure"); serr == nil {
		shot = " (screenshot " + p + ")"
	}
	b.t.Fatalf("browsertest: %s: %v%s", what, err, shot)
}

// Navigate opens u and waits for the page to load.
func (b *Browser) Navigate(u string) {
	b.t.Helper()
	b.do("navigate to "+u, chromedp.Navigate(u))
}

// Click clicks the first element matching the CSS selector, once visible.
// A node that went stale between finding and clicking it (the page was
// still loading or was replaced) is looked up again.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.retry("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// staleNode matches DevTools' errors for a node or document that a page
// load replaced under a running action.
var staleNode = regexp.MustCompile(`(?i)could not find node|no node with given id|node is detached|cannot find context with specified id|execution context was destroyed`)

// retry is do for actions a concurrent page load can break: they are
// tried again, within the step timeout, while the error says the node went
// stale.
func (b *Browser) retry(what string, step chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	for {
		err := chromedp.Do(ctx, step)
		if err == nil {
			return
		}
		if !staleNode.MatchString(err.Error()) || ctx.Err() != nil {
			b.fail(what, err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SetValue sets the value of an input (no key events: scripts that listen
// to keys see nothing; use Type for them).
func (b *Browser) SetValue(sel, value string) {
	b.t.Helper()
	b.retry("set value of "+sel, chromedp.SetValue(chromedp.CSS(sel), value, chromedp.NodeVisible))
}

// Type types text into an element, key by key.
func (b *Browser) Type(sel, text string) {
	b.t.Helper()
	b.retry("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible))
}

// WaitVisible waits until an element matching the selector is visible.
func (b *Browser) WaitVisible(sel string) {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Text is the visible text of the first element matching the selector.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("text of "+sel, err)
	}
	return s
}

// WaitText waits until the visible text of an element matching the
// selector contains want (across page loads: a page that posts itself
// away is followed) and returns that text.
func (b *Browser) WaitText(sel, want string) string {
	b.t.Helper()
	deadline := time.Now().Add(b.timeout)
	last := ""
	for {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			last = s
			if strings.Contains(s, want) {
				return s
			}
		}
		if b.ctx.Err() != nil || time.Now().After(deadline) {
			b.fail(fmt.Sprintf("wait for %q in %s", want, sel), fmt.Errorf("last text %q", last))
			return ""
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Location is the tab's URL.
func (b *Browser) Location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.fail("location", err)
	}
	return u
}

// Eval runs a JavaScript expression and returns its value as a string.
func (b *Browser) Eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string]("String("+expr+")"))
	if err != nil {
		b.fail("eval "+expr, err)
	}
	return v
}

// SetAcceptLanguage changes the languages of the following requests
// (the Accept-Language header and navigator.languages).
func (b *Browser) SetAcceptLanguage(lang string) {
	b.t.Helper()
	b.do("set Accept-Language", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		v, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
		if err != nil {
			return err
		}
		_, err = cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
			UserAgent: v.UserAgent, AcceptLanguage: lang,
		})
		return err
	}))
}

// Screenshot saves a PNG of the whole page as NN-name.png in the test's
// artefact directory and returns its path; the test fails if the image is
// empty.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	p, err := b.screenshot(name)
	if err != nil {
		b.t.Fatalf("browsertest: screenshot %s: %v", name, err)
	}
	return p
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (b *Browser) screenshot(name string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", err
	}
	if len(png) == 0 {
		return "", errors.New("empty image")
	}
	dir, err := b.artefacts()
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.shots++
	n := b.shots
	b.mu.Unlock()
	p := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", n, unsafeName.ReplaceAllString(name, "_")))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		return "", fmt.Errorf("browsertest: %w", err)
	}
	b.t.Logf("browsertest: screenshot %s", p)
	return p, nil
}

// artefacts is the test's artefact directory, made on first use.
func (b *Browser) artefacts() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir != "" {
		return b.dir, nil
	}
	root := os.Getenv(ArtefactsEnv)
	if root == "" {
		b.dir = b.t.TempDir()
		return b.dir, nil
	}
	dir := filepath.Join(root, unsafeName.ReplaceAllString(b.t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("browsertest: artefacts: %w", err)
	}
	b.dir = dir
	return dir, nil
}
