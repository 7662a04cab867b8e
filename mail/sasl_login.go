package mail

import (
	"mailgate/auth"
	"mailgate/confparse"
)

// LOGIN: the user name and the password, each in base64 after its own
// challenge ("Username:", "Password:"); the user name may come as an
// initial response. auth_http hears of it as plain, and nginx accepts it
// whatever the auth directive says.
func init() {
	RegisterMechanism(&Mechanism{Name: "LOGIN", Method: confparse.AuthLogin, Checked: CheckNever,
		Start: func(s *Session, ir []byte) (SASLStep, error) {
			if ir != nil {
				return loginUsername(s, ir)
			}
			return ask(StageLoginUsername, []byte(ChallengeUsername), loginUsername), nil
		}})
}

// Stages of LOGIN.
const (
	StageLoginUsername = "login username"
	StageLoginPassword = "login password"
)

func loginUsername(s *Session, resp []byte) (SASLStep, error) {
	login, err := s.decodeSASL(resp, "LOGIN")
	if err != nil {
		return done, err
	}
	s.Login = login
	return ask(StageLoginPassword, []byte(ChallengePassword), loginPassword), nil
}

func loginPassword(s *Session, resp []byte) (SASLStep, error) {
	pass, err := s.decodeSASL(resp, "LOGIN")
	if err != nil {
		return done, err
	}
	s.Passwd = pass
	s.AuthMethod = auth.MethodPlain
	return done, nil
}
