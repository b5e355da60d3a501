package customer

import (
	"encoding/json"
	"strings"

	"paygate"
)

// PAN is a validated card number (primary account number): 13 to 19 digits
// passing the Luhn check. Its String, GoString and JSON forms are masked, so
// it never reaches a log or a response in full; Digits returns the number
// for sealing and indexing.
type PAN struct{ d string }

// Luhn reports whether digits (ASCII digits only) pass the Luhn check.
func Luhn(digits string) bool {
	if digits == "" {
		return false
	}
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// LuhnDigit returns the check digit that makes partial+digit pass Luhn,
// and false when partial is not all digits.
func LuhnDigit(partial string) (byte, bool) {
	for c := byte('0'); c <= '9'; c++ {
		if Luhn(partial + string(c)) {
			return c, true
		}
	}
	return 0, false
}

// ParsePAN validates a card number: spaces and dashes are ignored; what
// remains must be 13 to 19 digits passing the Luhn check. Errors:
// CodeInvalidArgument on field "card_number", never echoing the input.
func ParsePAN(s string) (PAN, error) {
	d := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
	if len(d) < 13 || len(d) > 19 {
		return PAN{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "a card number has 13 to 19 digits")
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return PAN{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "a card number has digits only")
		}
	}
	if !Luhn(d) {
		return PAN{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "the card number is not valid (check digit)")
	}
	return PAN{d: d}, nil
}

// Digits returns the whole card number. Use it only to seal or index.
func (p PAN) Digits() string { return p.d }

// IsZero reports whether p holds no number.
func (p PAN) IsZero() bool { return p.d == "" }

// First6 returns the issuer prefix (BIN).
func (p PAN) First6() string { return p.d[:6] }

// Last4 returns the last four digits.
func (p PAN) Last4() string { return p.d[len(p.d)-4:] }

// Masked returns the masked form of the number.
func (p PAN) Masked() Masked {
	if p.d == "" {
		return Masked{}
	}
	return Masked{first6: p.First6(), last4: p.Last4(), length: len(p.d)}
}

// String returns the masked number.
func (p PAN) String() string { return p.Masked().String() }

// GoString returns the masked number, for %#v.
func (p PAN) GoString() string { return p.Masked().String() }

// MarshalJSON encodes the masked number.
func (p PAN) MarshalJSON() ([]byte, error) { return p.Masked().MarshalJSON() }

// Masked is a card number as it may be shown: at most its first six and
// last four digits, the rest as '*' ("622188******1234"). It holds no
// more than those ten digits, so nothing it prints can reveal more.
type Masked struct {
	first6, last4 string
	length        int
}

// NewMasked builds a Masked from the stored first six and last four digits
// and the number's length (13 to 19; other lengths show as 16).
func NewMasked(first6, last4 string, length int) Masked {
	if length < 13 || length > 19 {
		length = 16
	}
	return Masked{first6: keepDigits(first6, 6), last4: keepDigits(last4, 4), length: length}
}

func keepDigits(s string, n int) string {
	if len(s) != n {
		return strings.Repeat("*", n)
	}
	for i := 0; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return strings.Repeat("*", n)
		}
	}
	return s
}

// First6 returns the shown issuer prefix.
func (m Masked) First6() string { return m.first6 }

// Last4 returns the shown last four digits.
func (m Masked) Last4() string { return m.last4 }

// String returns "622188******1234" ("" for the zero Masked).
func (m Masked) String() string {
	if m.length == 0 {
		return ""
	}
	return m.first6 + strings.Repeat("*", m.length-10) + m.last4
}

// GoString returns String, for %#v.
func (m Masked) GoString() string { return m.String() }

// MarshalJSON encodes String.
func (m Masked) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// UnmarshalJSON reads a masked number back, keeping only its first six and
// last four digits.
func (m *Masked) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		*m = Masked{}
		return nil
	}
	if len(s) < 13 || len(s) > 19 {
		return paygate.E(paygate.CodeInvalidArgument, "a masked card number has 13 to 19 characters")
	}
	*m = NewMasked(s[:6], s[len(s)-4:], len(s))
	return nil
}
