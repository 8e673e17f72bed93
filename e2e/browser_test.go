package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which `make test` installs.
const chromiumPath = "/usr/bin/chromium"

// browser starts a fresh headless Chromium with its own profile and
// returns a tab. A missing Chromium fails the test: skipping would let the
// browser test silently never run.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("Chromium not found at %s: install it with `apt-get install -y chromium` (`make test` installs it): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("lang", "es-ES"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// do runs browser actions, failing the test with what was being done and
// where the browser was.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nat %s\n%s", what, err, loc, body)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v\nat %s", what, err, loc)
	}
	return v
}

// screenshot saves a full-page PNG when FIRMA_SCREENSHOTS names a
// directory, for people to look at the page; the tests' assertions do not
// depend on it.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("FIRMA_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// phone makes the tab a phone-sized, touch, high-density screen.
func phone() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
}

// desktop undoes phone.
func desktop() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(1280, 900)
}

// layoutProblems returns what is wrong with the page's layout at the
// current width: content wider than the screen, inputs without a label,
// buttons too small to tap.
func layoutProblems(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return get(t, ctx, "check layout", chromedp.Evaluate[[]string](`(() => {
		const p = [];
		const w = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth > w + 1) p.push("page is " + document.documentElement.scrollWidth + "px wide on a " + w + "px screen");
		for (const el of document.querySelectorAll("body *")) {
			const r = el.getBoundingClientRect();
			if (r.width > 0 && r.right > w + 1) p.push(el.tagName + (el.id ? "#" + el.id : "") + " overflows to " + Math.round(r.right) + "px");
		}
		for (const i of document.querySelectorAll("input:not([type=hidden])")) {
			if (!i.labels || i.labels.length === 0) p.push("input " + i.name + " has no label");
		}
		for (const b of document.querySelectorAll("button, a.button")) {
			const r = b.getBoundingClientRect();
			if (r.height > 0 && r.height < 44) p.push("button " + (b.id || b.textContent.trim()) + " is " + Math.round(r.height) + "px tall");
		}
		if (!document.querySelector('meta[name=viewport]')) p.push("no viewport meta");
		return p;
	})()`))
}
