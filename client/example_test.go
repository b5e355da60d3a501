package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"

	"paygate/client"
)

// A merchant loads the credentials `paygate merchant create --json` printed
// (or the demo merchant's data/demo-merchant.json) and creates a client.
func ExampleLoadCredentials() {
	cfg, err := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	_ = c
}

// Create an order, then pay it in the sandbox. The order's outcome arrives
// by notification (see ExampleClient_ParseNotification) and by query.
func ExampleClient_CreateOrder() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	ctx := context.Background()
	o, err := c.CreateOrder(ctx, client.CreateOrderRequest{
		OutTradeNo:  "20261122-0001", // your order number: retrying with it is safe
		Description: "Green tea, 250 g",
		Amount:      client.Amount{Total: 4_900, Currency: "CNY"}, // 49.00 CNY in fen
		NotifyURL:   "https://shop.example.com/paygate/notify",
	})
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Code == "OUT_TRADE_NO_USED" {
		log.Fatal("this order number was used for a different order")
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(o.Status, o.CheckoutURL) // NOTPAY http://.../checkout/ord_...
	if _, err := c.SandboxPay(ctx, o.ID, "success"); err != nil {
		log.Fatal(err)
	}
}

// The merchant's notify_url handler: verify, decrypt, record, then 2xx.
// paygate retries with the same notification id until it gets a 2xx.
func ExampleClient_ParseNotification() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	http.HandleFunc("/paygate/notify", func(w http.ResponseWriter, r *http.Request) {
		var order client.Order
		n, err := c.ParseNotification(r, &order)
		if err != nil {
			http.Error(w, "bad notification", http.StatusUnauthorized)
			return
		}
		if n.EventType == "TRANSACTION.SUCCESS" && order.Status == "SUCCESS" {
			// Mark order.OutTradeNo paid, once per n.ID, then answer 2xx.
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// Page through today's paid orders, newest first.
func ExampleClient_ListOrders() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	p := client.ListOrdersParams{Status: "SUCCESS", Limit: 50}
	for {
		page, err := c.ListOrders(context.Background(), p)
		if err != nil {
			log.Fatal(err)
		}
		for _, o := range page.Data {
			fmt.Println(o.OutTradeNo, o.Amount.Total)
		}
		if page.NextCursor == "" {
			break
		}
		p.Cursor = page.NextCursor
	}
}

// Refund part of a paid order, then follow it: a refund through a channel
// is PROCESSING until the channel answers, and the outcome arrives as a
// REFUND.SUCCESS or REFUND.ABNORMAL notification whose resource is the
// refund (see ExampleClient_ParseNotification; decode into client.Refund).
func ExampleClient_CreateRefund() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	ctx := context.Background()
	r, err := c.CreateRefund(ctx, client.CreateRefundRequest{
		OutTradeNo:  "20261122-0001",    // the order
		OutRefundNo: "20261122-0001-R1", // your refund number: retrying with it is safe
		Reason:      "Returned, one item",
		Amount:      client.RefundAmount{Refund: 1_000, Total: 4_900, Currency: "CNY"}, // 10.00 of 49.00 CNY
	})
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == "LIMIT_EXCEEDED":
		log.Fatal("more than is left to refund")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(r.ID, r.Status) // rfd_… PROCESSING (SUCCESS at once for payments on us)

	r, _ = c.GetRefundByOutRefundNo(ctx, "20261122-0001-R1")
	if r.Status == "ABNORMAL" {
		// The channel failed it; the money is yours again. Refund again with a new number.
	}
}

// A capture retried after a timeout must not run twice: the same
// Idempotency-Key gets the first answer again.
func ExampleWithIdempotencyKey() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	// One key per operation, made once and kept with it (here, from the
	// order id and what is done to it).
	ctx := client.WithIdempotencyKey(context.Background(), "capture-ord_0123-1")
	var o client.Order
	var err error
	for range 3 { // retried on network errors; never captured twice
		if o, err = c.CaptureOrder(ctx, "ord_0123", client.CaptureOrderRequest{}); err == nil {
			break
		}
		var apiErr *client.APIError
		if errors.As(err, &apiErr) {
			log.Fatal(apiErr.Code) // an answer: retrying will not change it
		}
	}
	fmt.Println(o.Status)
}
