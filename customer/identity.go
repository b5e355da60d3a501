package customer

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"paygate"
)

// IDNumber is a validated 18-character mainland resident ID number. Its
// String, GoString and JSON forms are masked (first 3 and last 4
// characters at most), so it never reaches a log or a response in full;
// Value returns the whole number for sealing and verification.
type IDNumber struct{ v string }

// idWeights are the ISO 7064 MOD 11-2 weights of the first 17 digits.
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// idCheck maps the weighted sum mod 11 to the check character.
const idCheck = "10X98765432"

// provinces lists the first two digits of valid region codes.
var provinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true, "21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true, "71": true, "81": true, "82": true, "83": true,
}

// IDCheckDigit returns the ISO 7064 MOD 11-2 check character ('0'-'9' or
// 'X') of the first 17 digits of an ID number, and false when first17 is
// not 17 ASCII digits.
func IDCheckDigit(first17 string) (byte, bool) {
	if len(first17) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		sum += int(c-'0') * idWeights[i]
	}
	return idCheck[sum%11], true
}

// ParseIDNumber validates a mainland resident ID number: 18 characters, 17
// digits and a check character (a lower-case x is accepted as X), a known
// province code, a real birth date between 1900-01-01 and now, and the
// ISO 7064 MOD 11-2 check character. Errors: CodeInvalidArgument on field
// "id_number", never echoing the input.
func ParseIDNumber(s string, now time.Time) (IDNumber, error) {
	bad := func(why string) (IDNumber, error) {
		return IDNumber{}, paygate.EField(paygate.CodeInvalidArgument, "id_number", "the ID number %s", why)
	}
	s = strings.TrimSpace(s)
	if len(s) != 18 {
		return bad("must have 18 characters")
	}
	if s[17] == 'x' {
		s = s[:17] + "X"
	}
	want, ok := IDCheckDigit(s[:17])
	if !ok {
		return bad("must start with 17 digits")
	}
	if !provinces[s[:2]] {
		return bad("has an unknown region code")
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < 1900 || birth.After(now) {
		return bad("has an impossible birth date")
	}
	if s[17] != want {
		return bad("has a wrong check digit")
	}
	return IDNumber{v: s}, nil
}

// Value returns the whole ID number. Use it only to seal, index or verify.
func (n IDNumber) Value() string { return n.v }

// IsZero reports whether n holds no number.
func (n IDNumber) IsZero() bool { return n.v == "" }

// Birth returns the birth date the number encodes.
func (n IDNumber) Birth() time.Time {
	t, _ := time.Parse("20060102", n.v[6:14])
	return t
}

// Masked returns the number with all but its first 3 and last 4
// characters replaced by '*'.
func (n IDNumber) Masked() string {
	if len(n.v) != 18 {
		return ""
	}
	return n.v[:3] + strings.Repeat("*", 11) + n.v[14:]
}

// String returns Masked, so fmt never prints the whole number.
func (n IDNumber) String() string { return n.Masked() }

// GoString returns Masked, for %#v.
func (n IDNumber) GoString() string { return n.Masked() }

// MarshalJSON encodes the masked number.
func (n IDNumber) MarshalJSON() ([]byte, error) { return []byte(`"` + n.Masked() + `"`), nil }

// ParsePhone validates a mainland mobile number: 11 digits starting 13-19,
// optionally prefixed by +86 or 86 and spaces or dashes. It returns the 11
// digits. Errors: CodeInvalidArgument on field "phone".
func ParsePhone(s string) (string, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "+")
	if len(s) == 13 && strings.HasPrefix(s, "86") {
		s = s[2:]
	}
	ok := len(s) == 11 && s[0] == '1' && s[1] >= '3' && s[1] <= '9'
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '0' && s[i] <= '9'
	}
	if !ok {
		return "", paygate.EField(paygate.CodeInvalidArgument, "phone", "phone must be a mainland mobile number (11 digits)")
	}
	return s, nil
}

// MaskPhone returns a phone number as 138****1234.
func MaskPhone(p string) string {
	if len(p) != 11 {
		return strings.Repeat("*", len(p))
	}
	return p[:3] + "****" + p[7:]
}

// MaxNameLength bounds a real name, in characters.
const MaxNameLength = 64

// ParseName validates a person's name: 1 to MaxNameLength characters,
// letters, marks, spaces and the middle dots of transliterated names, with
// surrounding space trimmed and inner runs of space collapsed. Errors:
// CodeInvalidArgument on field "name".
func ParseName(s string) (string, error) {
	s = strings.Join(strings.Fields(s), " ")
	n := utf8.RuneCountInString(s)
	ok := n >= 1 && n <= MaxNameLength && utf8.ValidString(s)
	for _, r := range s {
		if !ok {
			break
		}
		ok = unicode.IsLetter(r) || unicode.IsMark(r) || r == ' ' || r == '·' || r == '.' || r == '-' || r == '\''
	}
	if !ok {
		return "", paygate.EField(paygate.CodeInvalidArgument, "name", "name must be 1 to %d letters", MaxNameLength)
	}
	return s, nil
}

// MaskName keeps only the last character of a name: 张三 → *三.
func MaskName(s string) string {
	r, _ := utf8.DecodeLastRuneInString(s)
	if r == utf8.RuneError {
		return ""
	}
	return "*" + string(r)
}

// Identity is what real-name verification checks: a person's name, ID
// number and mobile phone.
type Identity struct {
	Name     string
	IDNumber IDNumber
	Phone    string
}

// Verifier checks an identity against an authoritative source (the
// public-security ID database and the carrier's phone registration). It
// reports whether all three belong together. Errors: CodeUnavailable when
// the source cannot be reached (safe to retry); the error never contains
// the identity.
type Verifier interface {
	VerifyIdentity(ctx context.Context, id Identity) (bool, error)
}

// SimVerifier is the sandbox's simulated verification service. Every
// well-formed identity matches, except an ID number whose sequence code
// (digits 15 to 17) is 999, which is reported as not matching, and a phone
// ending in 0000, for which the service is unavailable.
type SimVerifier struct{}

// VerifyIdentity implements Verifier as SimVerifier documents.
func (SimVerifier) VerifyIdentity(ctx context.Context, id Identity) (bool, error) {
	if strings.HasSuffix(id.Phone, "0000") {
		return false, paygate.E(paygate.CodeUnavailable, "the verification service is unavailable")
	}
	v := id.IDNumber.Value()
	return len(v) == 18 && v[14:17] != "999", nil
}
