package agreement

import (
	"context"
	"time"

	"paygate"
	"paygate/customer"
	"paygate/notify"
	"paygate/otp"
	"paygate/payment"
)

// Tx is the transaction agreements write through; store.Tx implements it.
// It is also the outbox's, the one-time codes', the customers' and the
// orders' transaction, so that a signature consumes its code and queues
// AGREEMENT.SIGNED atomically, and a charge's checks, limit usage, order,
// payment and notification commit together. Lookups of a missing row fail
// with CodeNotFound.
type Tx interface {
	notify.Tx
	// InsertMerchantAgreement inserts r unless the merchant already has an
	// agreement with its out_agreement_no, and reports whether it did.
	InsertMerchantAgreement(ctx context.Context, r Record) (bool, error)
	// MerchantAgreementByNoInTx returns the merchant's agreement with that
	// out_agreement_no.
	MerchantAgreementByNoInTx(ctx context.Context, merchantID, outAgreementNo string) (Record, error)
	// LockMerchantAgreement returns the agreement with the id, locking its
	// row until the transaction ends (charges of one agreement queue on
	// it, so its per-day limit is never overshot).
	LockMerchantAgreement(ctx context.Context, id string) (Record, error)
	// UpdateMerchantAgreement stores r's mutable fields (status, signer,
	// card, signing, revocation and expiry times, update time).
	UpdateMerchantAgreement(ctx context.Context, r Record) error
	// LockDueMerchantAgreements locks up to limit agreements due to expire
	// at now (PENDING past their sign window, SIGNED past their end),
	// skipping rows other transactions hold (PostgreSQL).
	LockDueMerchantAgreements(ctx context.Context, now time.Time, limit int) ([]Record, error)
	// AgreementChargedOn sums the agreement's charges counted on day:
	// those whose payment has not failed.
	AgreementChargedOn(ctx context.Context, agreementID string, day paygate.Date) (int64, error)
	// InsertAgreementCharge records a charge of an agreement.
	InsertAgreementCharge(ctx context.Context, c ChargeRecord) error
}

// ChargeTx is the transaction of a charge: the orders' (in which it runs),
// the agreements' and the customers' (limits).
type ChargeTx interface {
	payment.Tx
	customer.Tx
	Tx
}

// SignTx is the transaction of a signature: the agreements', the one-time
// codes' and the customers'.
type SignTx interface {
	Tx
	otp.Tx
	CustomerInTx(ctx context.Context, id string) (customer.Record, error)
}

// Store is the agreements' persistence: transactions and plain reads.
type Store interface {
	// InTx runs fn in one transaction, retrying it on transient conflicts.
	InTx(ctx context.Context, fn func(SignTx) error) error
	// MerchantAgreement returns the agreement with the id, whoever's it is.
	MerchantAgreement(ctx context.Context, id string) (Record, error)
	// MerchantAgreementByNo returns the merchant's agreement with that
	// out_agreement_no.
	MerchantAgreementByNo(ctx context.Context, merchantID, outAgreementNo string) (Record, error)
	// MerchantAgreements returns up to limit of the merchant's agreements
	// with id < before (all when ""), in status (any when ""), newest
	// first.
	MerchantAgreements(ctx context.Context, merchantID string, status Status, before string, limit int) ([]Record, error)
	// CustomerMerchantAgreements returns the agreements the customer
	// signed, newest first.
	CustomerMerchantAgreements(ctx context.Context, customerID string) ([]Record, error)
}

// ChargeRecord is one charge of an agreement.
type ChargeRecord struct {
	OrderID, AgreementID string
	Amount               int64
	Day                  paygate.Date
	CreatedAt            time.Time
}
