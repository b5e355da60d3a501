package payment

// Trigger is something that happens to an order.
type Trigger string

// Triggers of the order state machine.
const (
	// TriggerPay starts a payment attempt (SandboxPay; the checkout later).
	TriggerPay Trigger = "pay"
	// TriggerPaid: a channel confirmed a payment made before time_expire.
	TriggerPaid Trigger = "paid"
	// TriggerFailed: a channel reported a payment attempt failed.
	TriggerFailed Trigger = "failed"
	// TriggerClose: the merchant closed the order.
	TriggerClose Trigger = "close"
	// TriggerExpire: time_expire passed (CloseExpired, or a payment
	// confirmed as made at or after time_expire).
	TriggerExpire Trigger = "expire"
	// TriggerRefund: the merchant requested a refund (Service.Refund).
	TriggerRefund Trigger = "refund"
	// TriggerAuthorized: a channel confirmed a payment, made before
	// time_expire, of an order with capture_method MANUAL.
	TriggerAuthorized Trigger = "authorized"
	// TriggerCapture: the merchant captured the authorization (Capture).
	TriggerCapture Trigger = "capture"
	// TriggerVoid: the merchant voided the authorization (Void).
	TriggerVoid Trigger = "void"
	// TriggerAuthExpire: capture_before passed (ExpireAuthorizations).
	TriggerAuthExpire Trigger = "auth_expire"
)

// Triggers lists every trigger.
var Triggers = []Trigger{TriggerPay, TriggerPaid, TriggerFailed, TriggerClose, TriggerExpire, TriggerRefund,
	TriggerAuthorized, TriggerCapture, TriggerVoid, TriggerAuthExpire}

// Statuses lists every order status.
var Statuses = []Status{StatusNotPay, StatusPayError, StatusSuccess, StatusClosed, StatusRefund, StatusAuthorized}

// Transition is one row of the order state machine: in status From,
// trigger On leads to status To, or is refused with CodeConflict when
// Refused is set (To is then From). To == From with Refused unset is an
// allowed no-op for the order (the attempt may still change).
type Transition struct {
	From    Status
	On      Trigger
	To      Status
	Refused bool
}

// transitions is the whole state machine; docs/ORDERS.md shows the same
// table and a test compares them.
var transitions = []Transition{
	{StatusNotPay, TriggerPay, StatusNotPay, false},
	{StatusNotPay, TriggerPaid, StatusSuccess, false},
	{StatusNotPay, TriggerFailed, StatusPayError, false},
	{StatusNotPay, TriggerClose, StatusClosed, false},
	{StatusNotPay, TriggerExpire, StatusClosed, false},
	{StatusNotPay, TriggerRefund, StatusNotPay, true},
	{StatusNotPay, TriggerAuthorized, StatusAuthorized, false},
	{StatusNotPay, TriggerCapture, StatusNotPay, true},
	{StatusNotPay, TriggerVoid, StatusNotPay, true},
	{StatusNotPay, TriggerAuthExpire, StatusNotPay, false},

	{StatusPayError, TriggerPay, StatusPayError, false},
	{StatusPayError, TriggerPaid, StatusSuccess, false},
	{StatusPayError, TriggerFailed, StatusPayError, false},
	{StatusPayError, TriggerClose, StatusClosed, false},
	{StatusPayError, TriggerExpire, StatusClosed, false},
	{StatusPayError, TriggerRefund, StatusPayError, true},
	{StatusPayError, TriggerAuthorized, StatusAuthorized, false},
	{StatusPayError, TriggerCapture, StatusPayError, true},
	{StatusPayError, TriggerVoid, StatusPayError, true},
	{StatusPayError, TriggerAuthExpire, StatusPayError, false},

	{StatusSuccess, TriggerPay, StatusSuccess, true},
	{StatusSuccess, TriggerPaid, StatusSuccess, false}, // a second payment: held for review
	{StatusSuccess, TriggerFailed, StatusSuccess, false},
	{StatusSuccess, TriggerClose, StatusSuccess, true},
	{StatusSuccess, TriggerExpire, StatusSuccess, false},
	{StatusSuccess, TriggerRefund, StatusRefund, false},
	{StatusSuccess, TriggerAuthorized, StatusSuccess, false}, // a second authorization: voided at its channel
	{StatusSuccess, TriggerCapture, StatusSuccess, true},
	{StatusSuccess, TriggerVoid, StatusSuccess, true},
	{StatusSuccess, TriggerAuthExpire, StatusSuccess, false},

	{StatusClosed, TriggerPay, StatusClosed, true},
	{StatusClosed, TriggerPaid, StatusClosed, false}, // a late payment: held for review
	{StatusClosed, TriggerFailed, StatusClosed, false},
	{StatusClosed, TriggerClose, StatusClosed, false}, // idempotent
	{StatusClosed, TriggerExpire, StatusClosed, false},
	{StatusClosed, TriggerRefund, StatusClosed, true},
	{StatusClosed, TriggerAuthorized, StatusClosed, false}, // a late authorization: voided at its channel
	{StatusClosed, TriggerCapture, StatusClosed, true},
	{StatusClosed, TriggerVoid, StatusClosed, true},
	{StatusClosed, TriggerAuthExpire, StatusClosed, false},

	{StatusRefund, TriggerPay, StatusRefund, true},
	{StatusRefund, TriggerPaid, StatusRefund, false}, // a second payment: held for review
	{StatusRefund, TriggerFailed, StatusRefund, false},
	{StatusRefund, TriggerClose, StatusRefund, true},
	{StatusRefund, TriggerExpire, StatusRefund, false},
	{StatusRefund, TriggerRefund, StatusRefund, false},     // another refund, within the amount paid
	{StatusRefund, TriggerAuthorized, StatusRefund, false}, // a second authorization: voided at its channel
	{StatusRefund, TriggerCapture, StatusRefund, true},
	{StatusRefund, TriggerVoid, StatusRefund, true},
	{StatusRefund, TriggerAuthExpire, StatusRefund, false},

	{StatusAuthorized, TriggerPay, StatusAuthorized, true},
	{StatusAuthorized, TriggerPaid, StatusAuthorized, false}, // a second payment: held for review
	{StatusAuthorized, TriggerFailed, StatusAuthorized, false},
	{StatusAuthorized, TriggerClose, StatusAuthorized, true}, // void it instead
	{StatusAuthorized, TriggerExpire, StatusAuthorized, false},
	{StatusAuthorized, TriggerRefund, StatusAuthorized, true},      // nothing captured yet: void, or capture less
	{StatusAuthorized, TriggerAuthorized, StatusAuthorized, false}, // a second authorization: voided at its channel
	{StatusAuthorized, TriggerCapture, StatusSuccess, false},
	{StatusAuthorized, TriggerVoid, StatusClosed, false},
	{StatusAuthorized, TriggerAuthExpire, StatusClosed, false},
}

// Transitions returns the order state machine, one row per (status,
// trigger) pair.
func Transitions() []Transition { return append([]Transition(nil), transitions...) }

// next returns the status trigger on leads to from status from, and whether
// it is refused.
func next(from Status, on Trigger) (Status, bool) {
	for _, t := range transitions {
		if t.From == from && t.On == on {
			return t.To, t.Refused
		}
	}
	return from, true
}
