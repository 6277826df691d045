package apichannel

import "strings"

// NormalizePhone returns a phone number in E.164 ("+8613800138000") from the ways systems write
// an international number: with "+" or the "00" international prefix, with spaces, dashes,
// dots or parentheses, or as a tel: URI. A number without a country code is refused rather than
// guessed at: attaching a call or a message to the wrong contact is worse than rejecting it.
// The voice channel shares it so a caller and an API-channel contact with the same number are
// one identity.
func NormalizePhone(s string) (string, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "tel:")
	plus := strings.HasPrefix(s, "+")
	if plus {
		s = s[1:]
	}
	digits := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	if !plus {
		if len(digits) < 2 || digits[0] != '0' || digits[1] != '0' {
			return "", false
		}
		digits = digits[2:]
	}
	// E.164 allows at most 15 digits; country codes never start with 0. The lower bound admits
	// the short pseudo-numbers carriers use for withheld caller ids (Twilio's +266696687).
	if len(digits) < 6 || len(digits) > 15 || digits[0] == '0' {
		return "", false
	}
	return "+" + string(digits), true
}
