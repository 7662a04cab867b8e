package mail

import (
	"mailgate/auth"
	"mailgate/confparse"
)

// EXTERNAL (RFC 4422): base64 of the login, which may be empty; the client
// certificate is what authenticates, so auth_http gets Auth-SSL-*. nginx
// checks the auth directive only when there is no initial response, and,
// as in nginx, the password of an earlier failed attempt stays and goes to
// auth_http as Auth-Pass.
func init() {
	RegisterMechanism(&Mechanism{Name: "EXTERNAL", Method: confparse.AuthExternal, Checked: CheckWithoutIR,
		Start: func(s *Session, ir []byte) (SASLStep, error) {
			if ir != nil {
				return externalResponse(s, ir)
			}
			return ask(StageExternal, []byte(ChallengeUsername), externalResponse), nil
		}})
}

// StageExternal: the next line is the EXTERNAL login.
const StageExternal = "external"

func externalResponse(s *Session, resp []byte) (SASLStep, error) {
	login, err := s.decodeSASL(resp, "EXTERNAL")
	if err != nil {
		return done, err
	}
	s.Login = login
	s.AuthMethod = auth.MethodExternal
	return done, nil
}
