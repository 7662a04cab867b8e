package mail

import (
	"bytes"
	"encoding/base64"

	"mailgate/auth"
	"mailgate/confparse"
)

// XOAUTH2 (Google's), mailgate-only: base64 of "user=" user %x01
// "auth=Bearer " token %x01 %x01. The user goes to auth_http as Auth-User,
// the token as Auth-Pass, with Auth-Method: xoauth2. Only when the auth
// directive enables it. A refusal is preceded by a base64 JSON challenge
// that the client answers with an empty line.
func init() {
	RegisterMechanism(&Mechanism{MailgateOnly: true, Name: "XOAUTH2", Method: confparse.AuthXOAuth2, Checked: CheckAlways,
		AuthMethod:     auth.MethodXOAuth2,
		ErrorChallenge: base64.StdEncoding.AppendEncode(nil, []byte(`{"status":"401","schemes":"bearer"}`)),
		Start: func(s *Session, ir []byte) (SASLStep, error) {
			if ir != nil {
				return xoauth2Response(s, ir)
			}
			return ask(StageXOAuth2, nil, xoauth2Response), nil
		}})
}

func xoauth2Response(s *Session, resp []byte) (SASLStep, error) {
	msg, err := s.decodeSASL(resp, "XOAUTH2")
	if err != nil {
		return done, err
	}
	user, token, why := ParseXOAuth2(msg)
	if why != "" {
		return done, s.saslInvalid(why + " in AUTH XOAUTH2 command")
	}
	s.Login = user
	s.Passwd = token
	s.AuthMethod = auth.MethodXOAuth2
	return done, nil
}

// ParseXOAuth2 takes an XOAUTH2 client message apart: the user and the
// bearer token. why is the refusal ("invalid user", "no bearer token").
func ParseXOAuth2(msg []byte) (user, token []byte, why string) {
	// The pairs are those of OAUTHBEARER without the leading %x01.
	pairs, ok := kvPairs(append([]byte{0x01}, msg...))
	if !ok {
		return nil, nil, "invalid key/value pairs"
	}
	u, ok := pairs["user"]
	if !ok || len(u) == 0 || bytes.IndexByte(u, 0) >= 0 {
		return nil, nil, "invalid user"
	}
	tok, ok := bearerToken(pairs["auth"])
	if !ok {
		return nil, nil, "no bearer token"
	}
	return u, tok, ""
}
