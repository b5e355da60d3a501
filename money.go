package paygate

import (
	"fmt"
	"math"
	"strconv"
)

// Currency is an ISO 4217 alphabetic code such as "CNY".
type Currency string

// currencies lists the currencies paygate supports with their minor-unit
// exponent. Amounts are always integers of minor units (fen, cents).
var currencies = map[Currency]int{
	"CNY": 2, "HKD": 2, "USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0,
	"SGD": 2, "AUD": 2, "CAD": 2, "CHF": 2, "MOP": 2, "TWD": 2, "THB": 2,
	"MYR": 2, "NZD": 2, "BHD": 3, "KWD": 3,
}

// ParseCurrency validates an ISO 4217 code. It returns CodeUnknownCurrency for
// codes paygate does not support (lower case is not accepted).
func ParseCurrency(s string) (Currency, error) {
	c := Currency(s)
	if _, ok := currencies[c]; !ok {
		return "", EField(CodeUnknownCurrency, "currency", "unknown currency %q", s)
	}
	return c, nil
}

// Valid reports whether c is a supported ISO 4217 code.
func (c Currency) Valid() bool { _, ok := currencies[c]; return ok }

// Exponent returns the number of minor-unit digits (2 for CNY, 0 for JPY).
func (c Currency) Exponent() int { return currencies[c] }

// Money is an amount of minor units in one currency. It is never a float.
type Money struct {
	Amount   int64    `json:"amount"`
	Currency Currency `json:"currency"`
}

// String formats the amount with its currency's decimal places, computed
// from integers only: Money{12345, "CNY"} is "123.45 CNY".
func (m Money) String() string {
	return FormatMinor(m.Amount, m.Currency.Exponent()) + " " + string(m.Currency)
}

// FormatMinor renders an integer amount of minor units with exp decimals.
func FormatMinor(amount int64, exp int) string {
	neg := amount < 0
	u := uint64(amount)
	if neg {
		u = uint64(-(amount + 1)) + 1 // safe for MinInt64
	}
	s := strconv.FormatUint(u, 10)
	if exp > 0 {
		for len(s) <= exp {
			s = "0" + s
		}
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// CheckAmount validates a caller-supplied amount: it must be positive and at
// most max (when max > 0). Returns CodeAmountNotPositive or CodeLimitExceeded.
func CheckAmount(field string, amount, max int64) error {
	if amount <= 0 {
		return EField(CodeAmountNotPositive, field, "%s must be a positive integer of minor units", field)
	}
	if max > 0 && amount > max {
		return EField(CodeLimitExceeded, field, "%s exceeds the maximum of %d", field, max)
	}
	return nil
}

// AddInt64 returns a+b, or CodeOverflow if the sum does not fit in an int64.
func AddInt64(a, b int64) (int64, error) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, E(CodeOverflow, "amount overflows")
	}
	return a + b, nil
}

// MustAdd is AddInt64 for sums already proven in range; it panics otherwise.
func MustAdd(a, b int64) int64 {
	s, err := AddInt64(a, b)
	if err != nil {
		panic(fmt.Sprintf("paygate: overflow adding %d and %d", a, b))
	}
	return s
}
