package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// qr serves the QR code of an order's checkout URL as SVG: scanned by a
// phone, it opens the same checkout page there. Unknown orders, and orders
// without a checkout URL (no public URL configured), answer 404.
func (h *Handler) qr(w http.ResponseWriter, r *http.Request) {
	o, ok := h.order(w, r)
	if !ok {
		return
	}
	if o.CheckoutURL == "" {
		h.notFound(w, r)
		return
	}
	svg, err := QRSVG(o.CheckoutURL)
	if err != nil {
		h.log.ErrorContext(r.Context(), "checkout: QR code", "order_id", o.ID, "error", err)
		h.render(w, http.StatusInternalServerError, "error", errorPage{Title: "Something went wrong"})
		return
	}
	secure(w, false)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "private, max-age=3600") // the URL never changes
	w.Header().Set("Content-Length", strconv.Itoa(len(svg)))
	w.Write(svg)
}

// QRSVG encodes text as a QR code (error correction level M, with the
// standard 4-module quiet zone) drawn as one SVG path, crisp at any size.
func QRSVG(text string) ([]byte, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("web: QR code: %w", err)
	}
	bm := q.Bitmap() // includes the quiet zone
	n := len(bm)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range bm {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, run, run)
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return []byte(b.String()), nil
}
