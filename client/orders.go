package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Amount is an amount of integer minor units (fen for CNY) in a currency.
// On a manual-capture order Authorized is what the payment held and
// Captured what you captured of it (PayerTotal then equals Captured).
type Amount struct {
	Total      int64  `json:"total"`
	Currency   string `json:"currency,omitempty"`
	PayerTotal int64  `json:"payer_total,omitempty"`
	Authorized int64  `json:"authorized,omitempty"`
	Captured   int64  `json:"captured,omitempty"`
}

// CreateOrderRequest is the body of CreateOrder. OutTradeNo is your own
// order number: sending the same number with the same body again returns
// the same order (safe to retry); with a different body it fails with 409.
type CreateOrderRequest struct {
	OutTradeNo     string            `json:"out_trade_no"`
	Description    string            `json:"description"`
	Amount         Amount            `json:"amount"`
	NotifyURL      string            `json:"notify_url"`
	ReturnURL      string            `json:"return_url,omitempty"`
	TimeExpire     time.Time         `json:"time_expire,omitzero"`
	Attach         string            `json:"attach,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	PaymentMethods []string          `json:"payment_methods,omitempty"`
	// CaptureMethod is "AUTOMATIC" (the default) or "MANUAL": the payment
	// only authorizes, holding the money until you CaptureOrder or
	// VoidOrder (or it expires at the order's CaptureBefore).
	CaptureMethod string `json:"capture_method,omitempty"`
}

// Order is an order as paygate shows it (and as TRANSACTION.* notifications
// carry it). Status is NOTPAY, PAYERROR, SUCCESS, CLOSED, REFUND (paid,
// and refunded at least once) or AUTHORIZED (a manual-capture order paid,
// awaiting CaptureOrder or VoidOrder).
type Order struct {
	ID             string            `json:"id"`
	MchID          string            `json:"mchid"`
	OutTradeNo     string            `json:"out_trade_no"`
	Description    string            `json:"description"`
	Amount         Amount            `json:"amount"`
	Status         string            `json:"status"`
	NotifyURL      string            `json:"notify_url"`
	ReturnURL      string            `json:"return_url,omitempty"`
	Attach         string            `json:"attach,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	TimeExpire     time.Time         `json:"time_expire"`
	CreateTime     time.Time         `json:"create_time"`
	SuccessTime    time.Time         `json:"success_time,omitzero"`
	CloseTime      time.Time         `json:"close_time,omitzero"`
	CloseReason    string            `json:"close_reason,omitempty"`
	TransactionID  string            `json:"transaction_id,omitempty"`
	Channel        string            `json:"channel,omitempty"`
	ChannelTradeNo string            `json:"channel_trade_no,omitempty"`
	Sandbox        bool              `json:"sandbox"`
	CheckoutURL    string            `json:"checkout_url,omitempty"`
	CodeURL        string            `json:"code_url,omitempty"`
	CaptureMethod  string            `json:"capture_method,omitempty"`
	// AuthorizeTime and CaptureBefore are set once a manual-capture order
	// is AUTHORIZED: capture it before CaptureBefore.
	AuthorizeTime time.Time `json:"authorize_time,omitzero"`
	CaptureBefore time.Time `json:"capture_before,omitzero"`
}

// OrderPage is one page of orders, newest first.
type OrderPage struct {
	Data       []Order `json:"data"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// ListOrdersParams filters ListOrders; zero values mean "any".
type ListOrdersParams struct {
	Status      string
	CreatedFrom time.Time
	CreatedTo   time.Time
	Cursor      string
	Limit       int
}

// PaymentAttempt is a payment through a channel, as the sandbox pay call
// returns it; the order's outcome arrives later by notification.
type PaymentAttempt struct {
	ID      string `json:"id"`
	OrderID string `json:"order_id"`
	Channel string `json:"channel"`
	Status  string `json:"status"`
}

// CreateOrder creates an order (201) or returns the identical one you
// created before with this out_trade_no (200).
func (c *Client) CreateOrder(ctx context.Context, req CreateOrderRequest) (Order, error) {
	var o Order
	_, err := c.Do(ctx, "POST", "/v1/orders", req, &o)
	return o, err
}

// GetOrder queries an order by paygate's id.
func (c *Client) GetOrder(ctx context.Context, id string) (Order, error) {
	var o Order
	_, err := c.Do(ctx, "GET", "/v1/orders/"+url.PathEscape(id), nil, &o)
	return o, err
}

// GetOrderByOutTradeNo queries an order by your out_trade_no.
func (c *Client) GetOrderByOutTradeNo(ctx context.Context, outTradeNo string) (Order, error) {
	var o Order
	_, err := c.Do(ctx, "GET", "/v1/orders/out-trade-no/"+url.PathEscape(outTradeNo), nil, &o)
	return o, err
}

// CloseOrder closes an unpaid order.
func (c *Client) CloseOrder(ctx context.Context, id string) (Order, error) {
	var o Order
	_, err := c.Do(ctx, "POST", "/v1/orders/"+url.PathEscape(id)+"/close", nil, &o)
	return o, err
}

// ListOrders lists orders newest first; pass the page's NextCursor back as
// Cursor for the next page.
func (c *Client) ListOrders(ctx context.Context, p ListOrdersParams) (OrderPage, error) {
	q := url.Values{}
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	if !p.CreatedFrom.IsZero() {
		q.Set("created_from", p.CreatedFrom.Format(time.RFC3339))
	}
	if !p.CreatedTo.IsZero() {
		q.Set("created_to", p.CreatedTo.Format(time.RFC3339))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	path := "/v1/orders"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var page OrderPage
	_, err := c.Do(ctx, "GET", path, nil, &page)
	return page, err
}

// SandboxPay pays an order through the simulated channel (sandbox merchants
// only). outcome is "success", "fail", "timeout", "duplicate" or "late".
func (c *Client) SandboxPay(ctx context.Context, orderID, outcome string) (PaymentAttempt, error) {
	var a PaymentAttempt
	_, err := c.Do(ctx, "POST", "/v1/sandbox/orders/"+url.PathEscape(orderID)+"/pay", map[string]string{"outcome": outcome}, &a)
	return a, err
}

// Certificate is a platform public key.
type Certificate struct {
	SerialNo      string    `json:"serial_no"`
	PublicKey     string    `json:"public_key"`
	EffectiveTime time.Time `json:"effective_time"`
	ExpireTime    time.Time `json:"expire_time"`
}

// Certificates lists the platform's public keys (to trust a rotated key,
// pass it to AddPlatformKey after checking it out of band).
func (c *Client) Certificates(ctx context.Context) ([]Certificate, error) {
	var out struct {
		Data []Certificate `json:"data"`
	}
	_, err := c.Do(ctx, "GET", "/v1/certificates", nil, &out)
	return out.Data, err
}

// ResendNotification asks paygate to deliver a notification again.
func (c *Client) ResendNotification(ctx context.Context, eventID string) error {
	_, err := c.Do(ctx, "POST", "/v1/notifications/"+url.PathEscape(eventID)+"/resend", nil, nil)
	return err
}
