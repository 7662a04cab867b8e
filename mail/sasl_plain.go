package mail

import (
	"bytes"

	"mailgate/auth"
	"mailgate/confparse"
)

// PLAIN (RFC 4616): base64 of authzid NUL authcid NUL passwd. nginx
// ignores the authzid and accepts PLAIN whatever the auth directive says.
func init() {
	RegisterMechanism(&Mechanism{Name: "PLAIN", Method: confparse.AuthPlain, Checked: CheckNever,
		Start: func(s *Session, ir []byte) (SASLStep, error) {
			if ir != nil {
				return plainResponse(s, ir)
			}
			return ask(StagePlain, nil, plainResponse), nil
		}})
}

// StagePlain: the next line is the PLAIN response.
const StagePlain = "plain"

func plainResponse(s *Session, resp []byte) (SASLStep, error) {
	plain, err := s.decodeSASL(resp, "PLAIN")
	if err != nil {
		return done, err
	}
	i := bytes.IndexByte(plain, 0)
	if i < 0 {
		return done, s.saslInvalid("invalid login in AUTH PLAIN command")
	}
	rest := plain[i+1:]
	j := bytes.IndexByte(rest, 0)
	if j < 0 {
		return done, s.saslInvalid("invalid password in AUTH PLAIN command")
	}
	s.Login = rest[:j]
	s.Passwd = rest[j+1:]
	s.AuthMethod = auth.MethodPlain
	return done, nil
}
