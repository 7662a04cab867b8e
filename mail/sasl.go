package mail

// SASL decoding shared by POP3, IMAP and SMTP. nginx keeps these steps in
// one place for all three protocols; only the challenge prefix ("+ " or
// "334 ") differs, and the protocol adds it.
//
// Every refusal is handler-level: the method logs nginx's info line and
// returns ErrRejected, which the engine answers with the protocol's
// invalid-command reply without counting it toward max_errors. Decoded
// credentials are never logged.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"math/big"
	"strconv"
	"time"

	"mailgate/auth"
	"mailgate/mail/errlog"
)

// Base64 challenges nginx sends for AUTH LOGIN (and EXTERNAL without an
// initial response).
const (
	ChallengeUsername = "VXNlcm5hbWU6" // "Username:"
	ChallengePassword = "UGFzc3dvcmQ6" // "Password:"
)

// DecodeBase64 decodes like nginx's ngx_decode_base64: the standard
// alphabet, padding optional, decoding stops at the first '=' (what follows
// it is ignored), and a length of 4n+1 symbols is invalid.
func DecodeBase64(src []byte) ([]byte, bool) {
	if i := bytes.IndexByte(src, '='); i >= 0 {
		src = src[:i]
	}
	for _, c := range src {
		if !isBase64Symbol(c) {
			return nil, false
		}
	}
	if len(src)%4 == 1 {
		return nil, false
	}
	dst := make([]byte, base64.RawStdEncoding.DecodedLen(len(src)))
	n, err := base64.RawStdEncoding.Decode(dst, src)
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}

func isBase64Symbol(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

func (s *Session) saslInvalid(what string) error {
	s.Logf(errlog.Info, "client sent %s", what)
	return ErrRejected
}

// SASLPlain takes an AUTH PLAIN response (base64 of authzid NUL authcid NUL
// passwd). The authzid is ignored, as nginx does.
func (s *Session) SASLPlain(arg []byte) error {
	plain, ok := DecodeBase64(arg)
	if !ok {
		return s.saslInvalid("invalid base64 encoding in AUTH PLAIN command")
	}
	i := bytes.IndexByte(plain, 0)
	if i < 0 {
		return s.saslInvalid("invalid login in AUTH PLAIN command")
	}
	rest := plain[i+1:]
	j := bytes.IndexByte(rest, 0)
	if j < 0 {
		return s.saslInvalid("invalid password in AUTH PLAIN command")
	}
	s.Login = rest[:j]
	s.Passwd = rest[j+1:]
	s.AuthMethod = auth.MethodPlain
	return nil
}

// SASLLoginUsername takes the base64 user name of AUTH LOGIN.
func (s *Session) SASLLoginUsername(arg []byte) error {
	login, ok := DecodeBase64(arg)
	if !ok {
		return s.saslInvalid("invalid base64 encoding in AUTH LOGIN command")
	}
	s.Login = login
	return nil
}

// SASLLoginPassword takes the base64 password of AUTH LOGIN; the method is
// reported to auth_http as plain.
func (s *Session) SASLLoginPassword(arg []byte) error {
	pass, ok := DecodeBase64(arg)
	if !ok {
		return s.saslInvalid("invalid base64 encoding in AUTH LOGIN command")
	}
	s.Passwd = pass
	s.AuthMethod = auth.MethodPlain
	return nil
}

// SASLCRAMMD5Challenge returns prefix + base64(salt) + CRLF, making the salt
// first if the session has none (IMAP and SMTP make it at the first
// CRAM-MD5; POP3 made it with the greeting).
func (s *Session) SASLCRAMMD5Challenge(prefix string) []byte {
	if s.Salt == nil {
		s.NewSalt()
	}
	b := make([]byte, 0, len(prefix)+base64.StdEncoding.EncodedLen(len(s.Salt))+2)
	b = append(b, prefix...)
	b = base64.StdEncoding.AppendEncode(b, s.Salt)
	return append(b, '\r', '\n')
}

// SASLCRAMMD5 takes the CRAM-MD5 response: base64 of "user" SP 32 hex
// digits. The digest travels to auth_http as Auth-Pass.
func (s *Session) SASLCRAMMD5(arg []byte) error {
	resp, ok := DecodeBase64(arg)
	if !ok {
		return s.saslInvalid("invalid base64 encoding in AUTH CRAM-MD5 command")
	}
	i := bytes.IndexByte(resp, ' ')
	if i < 0 || len(resp)-i-1 != 32 {
		// nginx has already stored the login (the part before the first
		// space, or everything) and logs it with the refusal.
		if i >= 0 {
			s.Login = resp[:i]
		} else {
			s.Login = resp
		}
		return s.saslInvalid("invalid CRAM-MD5 hash in AUTH CRAM-MD5 command")
	}
	s.Login = resp[:i]
	s.Passwd = resp[i+1:]
	s.AuthMethod = auth.MethodCRAMMD5
	return nil
}

// SASLExternal takes the AUTH EXTERNAL response: base64 of the login (may be
// empty). EXTERNAL has no password, but as in nginx the password of an
// earlier failed attempt stays and goes to auth_http as Auth-Pass.
func (s *Session) SASLExternal(arg []byte) error {
	login, ok := DecodeBase64(arg)
	if !ok {
		return s.saslInvalid("invalid base64 encoding in AUTH EXTERNAL command")
	}
	s.Login = login
	s.AuthMethod = auth.MethodExternal
	return nil
}

// NewSalt sets the session's APOP/CRAM-MD5 challenge "<R.T@server_name>":
// R a random non-negative 31-bit integer, T the Unix time in seconds.
func (s *Session) NewSalt() {
	r, err := rand.Int(rand.Reader, big.NewInt(1<<31))
	if err != nil {
		r = big.NewInt(time.Now().UnixNano() & (1<<31 - 1))
	}
	name := ""
	if s.Conf != nil {
		name = s.Conf.Core.ServerName
	}
	b := make([]byte, 0, 32+len(name))
	b = append(b, '<')
	b = r.Append(b, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, '@')
	b = append(b, name...)
	b = append(b, '>')
	s.Salt = b
}
