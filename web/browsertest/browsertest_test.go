package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"paygate/web/browsertest"
)

// TestNew: the harness starts a browser that loads a page and runs its
// script.
func TestNew(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>t</title><p id="p">waiting</p><script>document.getElementById("p").textContent = "ran"</script>`))
	}))
	t.Cleanup(srv.Close)
	ctx := browsertest.New(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.ID("p"))))
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("p")))
	require.NoError(t, err)
	require.Equal(t, "ran", got)
}
