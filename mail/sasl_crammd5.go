package mail

import (
	"bytes"
	"encoding/base64"

	"mailgate/auth"
	"mailgate/confparse"
)

// CRAM-MD5 (RFC 2195): the challenge is the session's salt in base64 (IMAP
// and SMTP make it at the first CRAM-MD5, POP3 with the greeting); the
// answer is base64 of "user" SP 32 hex digits, and the digest travels to
// auth_http as Auth-Pass. Only without an initial response, and only when
// the auth directive enables it.
func init() {
	RegisterMechanism(&Mechanism{Name: "CRAM-MD5", Method: confparse.AuthCRAMMD5, Checked: CheckAlways,
		Start: func(s *Session, ir []byte) (SASLStep, error) {
			if ir != nil {
				return done, ErrRejected
			}
			if s.Salt == nil {
				s.NewSalt()
			}
			return ask(StageCRAMMD5, base64.StdEncoding.AppendEncode(nil, s.Salt), cramMD5Response), nil
		}})
}

// StageCRAMMD5: the next line is the CRAM-MD5 response.
const StageCRAMMD5 = "cram-md5"

func cramMD5Response(s *Session, resp []byte) (SASLStep, error) {
	r, err := s.decodeSASL(resp, "CRAM-MD5")
	if err != nil {
		return done, err
	}
	i := bytes.IndexByte(r, ' ')
	if i < 0 || len(r)-i-1 != 32 {
		// nginx has already stored the login (the part before the first
		// space, or everything) and logs it with the refusal.
		if i >= 0 {
			s.Login = r[:i]
		} else {
			s.Login = r
		}
		return done, s.saslInvalid("invalid CRAM-MD5 hash in AUTH CRAM-MD5 command")
	}
	s.Login = r[:i]
	s.Passwd = r[i+1:]
	s.AuthMethod = auth.MethodCRAMMD5
	return done, nil
}
