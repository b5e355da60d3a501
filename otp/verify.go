package otp

import (
	"context"
	"errors"
	"time"

	"paygate"
)

// Proof says that the right code for a purpose and subject was entered. Only
// Check makes one; ConsumeTx spends it. The zero Proof proves nothing.
type Proof struct {
	id, purpose, subject string
	expiresAt            time.Time
}

// ID returns the id of the code the proof is for.
func (p Proof) ID() string { return p.id }

// ExpiresAt returns when the code expires; ConsumeTx refuses it from then.
func (p Proof) ExpiresAt() time.Time { return p.expiresAt }

// Verify checks input against the live code of purpose and subject and, if
// it is right, consumes the code, all in one transaction of its own. A wrong
// code counts a try (committed); of concurrent verifications of one code
// exactly one succeeds. Errors (errors.Is the sentinel):
//
//   - CodeInvalidArgument + ErrMalformed: not six digits (no try counted);
//   - CodeUnauthenticated + ErrWrongCode: wrong, with tries left (the
//     message says how many);
//   - CodeUnauthenticated + ErrSuperseded: the code of an earlier SMS;
//   - CodeUnauthenticated + ErrExpired: the code's 5 minutes are over;
//   - CodeLimitExceeded + ErrTooManyTries: the tries are used up, even if
//     the code is right now;
//   - CodeConflict + ErrUsed: the code was used already;
//   - CodeNotFound + ErrNoCode: no code was issued for purpose and subject;
//   - CodeInternal or CodeUnavailable from the database.
func (s *Service) Verify(ctx context.Context, purpose, subject, input string) error {
	_, err := s.check(ctx, purpose, subject, input, true)
	return err
}

// Check is Verify without consuming: in a transaction of its own it counts
// a try and, if input is right, returns a Proof for ConsumeTx. Wrong tries
// are committed before the caller's transaction starts, so rolling that back
// never gives a try back. Errors as Verify.
func (s *Service) Check(ctx context.Context, purpose, subject, input string) (Proof, error) {
	return s.check(ctx, purpose, subject, input, false)
}

func (s *Service) check(ctx context.Context, purpose, subject, input string, consume bool) (Proof, error) {
	if err := checkName("purpose", purpose, MaxPurposeLen); err != nil {
		return Proof{}, err
	}
	if err := checkName("subject", subject, MaxSubjectLen); err != nil {
		return Proof{}, err
	}
	code, err := ParseCode(input)
	if err != nil {
		return Proof{}, err
	}
	var (
		proof Proof
		verr  error
		c     Code
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		proof, verr = Proof{}, nil
		now := s.now()
		var ok bool
		var err error
		c, ok, err = tx.ClaimTry(ctx, purpose, subject, now)
		if err != nil {
			return err
		}
		if !ok {
			verr, err = s.diagnose(ctx, tx, purpose, subject, now)
			return err
		}
		if !s.matches(c, code) {
			verr, err = s.wrong(ctx, tx, c, code, now)
			return err // nil: the try commits
		}
		proof = Proof{id: c.ID, purpose: purpose, subject: subject, expiresAt: c.ExpiresAt}
		if consume {
			ok, err := tx.ConsumeCode(ctx, c.ID, purpose, subject, now)
			if err != nil {
				return err
			}
			if !ok { // the claimed row is locked by this transaction
				return paygate.Internal(errNotConsumed)
			}
		}
		return nil
	})
	if err != nil {
		return Proof{}, err
	}
	if verr != nil {
		s.log.Info("otp verification failed", "otp_id", c.ID, "purpose", purpose, "reason", reason(verr), "tries", c.Tries)
		return Proof{}, verr
	}
	if consume {
		s.log.Debug("otp verified and used", "otp_id", c.ID, "purpose", purpose, "tries", c.Tries)
	}
	return proof, nil
}

// ConsumeTx spends a Proof from Check inside the caller's transaction, in
// one conditional UPDATE: the code becomes used only if tx commits, and of
// concurrent consumptions of one code exactly one succeeds. purpose and
// subject must be the ones the proof was made for. Errors:
// CodeInvalidArgument for the zero Proof, CodeUnauthenticated for a proof
// of another purpose or subject, or wrapping ErrSuperseded or ErrExpired,
// CodeConflict + ErrUsed when the code was used already, or the
// transaction's own error.
func (s *Service) ConsumeTx(ctx context.Context, tx Tx, purpose, subject string, p Proof) error {
	if p.id == "" {
		return &paygate.Error{Code: paygate.CodeInvalidArgument, Message: "no verified code", Err: errZeroProof}
	}
	if p.purpose != purpose || p.subject != subject {
		return fail(paygate.CodeUnauthenticated, errProofMismatch, "the code was not sent for this")
	}
	now := s.now()
	ok, err := tx.ConsumeCode(ctx, p.id, purpose, subject, now)
	if err != nil || ok {
		return err
	}
	c, found, err := tx.CodeByID(ctx, p.id)
	if err != nil {
		return err
	}
	var verr error
	switch {
	case !found:
		return paygate.Internal(errNotConsumed)
	case c.Status == StatusUsed:
		verr = errUsed()
	case c.Status == StatusSuperseded:
		verr = errSuperseded(0)
	case !now.Before(c.ExpiresAt):
		verr = errExpired()
	default:
		return paygate.Internal(errNotConsumed)
	}
	s.log.Info("otp consumption refused", "otp_id", p.id, "purpose", purpose, "reason", reason(verr))
	return verr
}

// diagnose says why no code could take a try.
func (s *Service) diagnose(ctx context.Context, tx Tx, purpose, subject string, now time.Time) (verr, err error) {
	c, ok, err := tx.LatestCode(ctx, purpose, subject)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return &paygate.Error{Code: paygate.CodeNotFound, Field: "code", Err: ErrNoCode,
			Message: "no code was sent for this; ask for a code"}, nil
	case c.Status == StatusUsed:
		return errUsed(), nil
	case c.Status == StatusSuperseded:
		return errSuperseded(0), nil
	case !now.Before(c.ExpiresAt):
		return errExpired(), nil
	case c.Tries >= c.MaxTries:
		return errTooManyTries(), nil
	}
	// A new code was issued between the two statements: look again.
	return nil, paygate.ErrRetry
}

// wrong classifies a wrong code that took a try: the code of a superseded
// SMS, or simply wrong.
func (s *Service) wrong(ctx context.Context, tx Tx, c Code, code string, now time.Time) (verr, err error) {
	left := c.MaxTries - c.Tries
	if left <= 0 {
		return errTooManyTries(), nil
	}
	old, err := tx.SupersededMACs(ctx, c.Purpose, c.Subject, now.Add(-s.ttl))
	if err != nil {
		return nil, err
	}
	for _, o := range old {
		if s.matches(o, code) {
			return errSuperseded(left), nil
		}
	}
	return fail(paygate.CodeUnauthenticated, ErrWrongCode, "the code is wrong; %d %s left", left, plural(left, "try", "tries")), nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func errUsed() error {
	return fail(paygate.CodeConflict, ErrUsed, "this code has already been used; ask for a new one")
}

func errExpired() error {
	return fail(paygate.CodeUnauthenticated, ErrExpired, "the code has expired; ask for a new one")
}

func errTooManyTries() error {
	return fail(paygate.CodeLimitExceeded, ErrTooManyTries, "too many wrong codes; ask for a new one")
}

func errSuperseded(left int) error {
	if left > 0 {
		return fail(paygate.CodeUnauthenticated, ErrSuperseded,
			"a newer code was sent; enter the code of the latest SMS (%d %s left)", left, plural(left, "try", "tries"))
	}
	return fail(paygate.CodeUnauthenticated, ErrSuperseded, "a newer code was sent; enter the code of the latest SMS")
}

// reason names a verification failure for logs.
func reason(err error) string {
	for _, e := range []error{ErrWrongCode, ErrSuperseded, ErrExpired, ErrTooManyTries, ErrUsed, ErrNoCode} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}
