package client

import (
	"context"
	"net/url"
)

// CaptureOrderRequest is the body of CaptureOrder. A nil Amount captures
// everything authorized; Amount.Total captures that much (at most the
// amount authorized) and gives the rest back to the payer.
type CaptureOrderRequest struct {
	Amount *Amount `json:"amount,omitempty"`
}

// CaptureOrder captures an AUTHORIZED order (created with CaptureMethod
// "MANUAL"): it becomes SUCCESS with Amount.Captured, and refunds may then
// give back up to that. Errors (APIError.Code): LIMIT_EXCEEDED (422) beyond
// the amount authorized, ALREADY_RESOLVED (409) once captured or voided,
// HOLD_EXPIRED (409) at or after the order's CaptureBefore, CONFLICT (409)
// for an order that is not an authorization, NOT_FOUND (404).
func (c *Client) CaptureOrder(ctx context.Context, orderID string, req CaptureOrderRequest) (Order, error) {
	var o Order
	_, err := c.Do(ctx, "POST", "/v1/orders/"+url.PathEscape(orderID)+"/capture", req, &o)
	return o, err
}

// VoidOrder voids an AUTHORIZED order: the held money goes back to the
// payer and the order becomes CLOSED with CloseReason "VOIDED". Errors:
// ALREADY_RESOLVED (409) once captured or voided, HOLD_EXPIRED (409) once
// expired, CONFLICT (409) for an order that is not an authorization,
// NOT_FOUND (404).
func (c *Client) VoidOrder(ctx context.Context, orderID string) (Order, error) {
	var o Order
	_, err := c.Do(ctx, "POST", "/v1/orders/"+url.PathEscape(orderID)+"/void", nil, &o)
	return o, err
}
