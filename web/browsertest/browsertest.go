// Package browsertest gives tests a real headless browser: Debian's
// chromium driven through chromedp.
//
// New finds the browser ($PAYGATE_CHROMIUM, else chromium, chromium-browser,
// google-chrome or google-chrome-stable on PATH). When there is none and
// CI=true, it installs Debian's chromium package as root (apt-get update,
// apt-get install -y chromium; scripts/ensure-chromium.sh does the same
// before `make test`), and fails the test if it still cannot; elsewhere it
// skips the test with a message saying what to install.
//
// Each browser runs headless with --no-sandbox (tests run as root in
// containers), --disable-gpu, no background networking, component updates,
// sync or first-run UI, and a fresh user-data-dir, so tests never share
// cookies or caches.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Timeout bounds each browser's whole life in a test, so a page that never
// shows what a wait expects fails the test instead of hanging it.
const Timeout = 2 * time.Minute

// candidates are the browser commands tried, in order, after $PAYGATE_CHROMIUM.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Chromium returns the path of the browser to drive: $PAYGATE_CHROMIUM when
// set, else the first candidate on PATH.
func Chromium() (string, error) {
	if p := os.Getenv("PAYGATE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PAYGATE_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH (apt-get install chromium, or set PAYGATE_CHROMIUM)")
}

var (
	installOnce sync.Once
	installErr  error
)

// ensure returns the browser's path, installing it first under CI.
// Without one it skips t (or fails it under CI).
func ensure(t testing.TB) string {
	t.Helper()
	p, err := Chromium()
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "true" {
		t.Skipf("browser test skipped: %v", err)
	}
	installOnce.Do(func() { installErr = install() })
	if installErr != nil {
		t.Fatalf("browsertest: cannot install chromium: %v", installErr)
	}
	p, err = Chromium()
	if err != nil {
		t.Fatalf("browsertest: chromium installed but not found: %v", err)
	}
	return p
}

// install installs Debian's chromium with apt-get, as root, holding a file
// lock so that test binaries running in parallel install it once.
func install() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: install chromium first (apt-get install chromium)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("no apt-get: install chromium first")
	}
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "paygate-chromium-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if _, err := Chromium(); err == nil {
		return nil // another test binary installed it while we waited
	}
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-liberation"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", args[0], err, out)
		}
	}
	return nil
}

// Options returns the allocator options New starts the browser with: the
// browser at path, headless, and userDataDir as its fresh profile.
func Options(path, userDataDir string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(userDataDir),
	)
}

// New starts a browser for t and returns the context of its first tab,
// for chromedp.Do and chromedp.Run. The browser stops when t ends or after
// Timeout. It skips t when no browser is available (see the package doc).
func New(t testing.TB) context.Context {
	t.Helper()
	path := ensure(t)
	dir := t.TempDir()
	ctx, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, Options(path, dir)...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(bctx); err != nil { // start the browser and open the tab
		t.Fatalf("browsertest: cannot start %s: %v", path, err)
	}
	return bctx
}
