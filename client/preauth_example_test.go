package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"paygate/client"
)

// Pre-authorize a hotel deposit: the payment holds 500.00 CNY; at
// check-out capture what the stay cost (the rest goes back to the guest),
// or void the order if the guest cancels. An authorization not captured
// by the order's CaptureBefore (7 days by default) is released by itself.
func ExampleClient_CaptureOrder() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	ctx := context.Background()
	o, err := c.CreateOrder(ctx, client.CreateOrderRequest{
		OutTradeNo:    "20261122-ROOM-0042",
		Description:   "Room 42, deposit",
		Amount:        client.Amount{Total: 50_000, Currency: "CNY"},
		NotifyURL:     "https://hotel.example.com/paygate/notify",
		CaptureMethod: "MANUAL",
	})
	if err != nil {
		log.Fatal(err)
	}
	// ... the guest pays; TRANSACTION.AUTHORIZED arrives, the order is AUTHORIZED ...

	o, err = c.CaptureOrder(ctx, o.ID, client.CaptureOrderRequest{Amount: &client.Amount{Total: 32_800}})
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == "HOLD_EXPIRED":
		log.Fatal("too late: the authorization expired and the guest has the money back")
	case errors.As(err, &apiErr) && apiErr.Code == "ALREADY_RESOLVED":
		log.Fatal("captured or voided before")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(o.Status, o.Amount.Captured, "of", o.Amount.Authorized) // SUCCESS 32800 of 50000
}

// The guest cancelled: give the whole deposit back.
func ExampleClient_VoidOrder() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	o, err := c.VoidOrder(context.Background(), "ord_...")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(o.Status, o.CloseReason) // CLOSED VOIDED
}
