package mail

import (
	"bytes"
	"encoding/base64"

	"mailgate/auth"
	"mailgate/confparse"
)

// OAUTHBEARER (RFC 7628), mailgate-only: base64 of a GS2 header
// "n,a=user," (the authzid may be absent), %x01, key=value pairs each
// ended by %x01 (host, port, auth, ...), and a final %x01. The "auth"
// pair holds "Bearer <token>". The user named in a= goes to auth_http as
// Auth-User, the token as Auth-Pass, with Auth-Method: oauthbearer. Only
// when the auth directive enables it; channel binding is not supported.
func init() {
	RegisterMechanism(&Mechanism{MailgateOnly: true, Name: "OAUTHBEARER", Method: confparse.AuthOAuthBearer, Checked: CheckAlways,
		AuthMethod:     auth.MethodOAuthBearer,
		ErrorChallenge: base64.StdEncoding.AppendEncode(nil, []byte(`{"status":"invalid_token","schemes":"bearer"}`)),
		Start: func(s *Session, ir []byte) (SASLStep, error) {
			if ir != nil {
				return oauthBearerResponse(s, ir)
			}
			return ask(StageOAuthBearer, nil, oauthBearerResponse), nil
		}})
}

func oauthBearerResponse(s *Session, resp []byte) (SASLStep, error) {
	msg, err := s.decodeSASL(resp, "OAUTHBEARER")
	if err != nil {
		return done, err
	}
	user, token, why := ParseOAuthBearer(msg)
	if why != "" {
		return done, s.saslInvalid(why + " in AUTH OAUTHBEARER command")
	}
	s.Login = user
	s.Passwd = token
	s.AuthMethod = auth.MethodOAuthBearer
	return done, nil
}

// ParseOAuthBearer takes an OAUTHBEARER client message apart: the
// authzid (nil when absent) and the bearer token. why is the refusal
// ("invalid gs2 header", "invalid key/value pairs", "no bearer token").
func ParseOAuthBearer(msg []byte) (user, token []byte, why string) {
	// gs2-header = gs2-cbind-flag "," [ "a=" saslname ] ","
	var rest []byte
	switch {
	case bytes.HasPrefix(msg, []byte("n,")), bytes.HasPrefix(msg, []byte("y,")):
		rest = msg[2:]
	default: // "p=..." asks for channel binding, which is not offered
		return nil, nil, "invalid gs2 header"
	}
	i := bytes.IndexByte(rest, ',')
	if i < 0 {
		return nil, nil, "invalid gs2 header"
	}
	if authz := rest[:i]; len(authz) > 0 {
		if !bytes.HasPrefix(authz, []byte("a=")) {
			return nil, nil, "invalid gs2 header"
		}
		u, ok := saslName(authz[2:])
		if !ok {
			return nil, nil, "invalid gs2 header"
		}
		user = u
	}
	pairs, ok := kvPairs(rest[i+1:])
	if !ok {
		return nil, nil, "invalid key/value pairs"
	}
	tok, ok := bearerToken(pairs["auth"])
	if !ok {
		return nil, nil, "no bearer token"
	}
	if user == nil {
		user = []byte{}
	}
	return user, tok, ""
}

// saslName decodes RFC 5801's saslname: "=2C" is ',', "=3D" is '=', any
// other '=' and a bare ',' are invalid.
func saslName(b []byte) ([]byte, bool) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case ',':
			return nil, false
		case '=':
			if i+2 >= len(b) {
				return nil, false
			}
			switch string(b[i+1 : i+3]) {
			case "2C", "2c":
				out = append(out, ',')
			case "3D", "3d":
				out = append(out, '=')
			default:
				return nil, false
			}
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out, true
}

// kvPairs reads %x01 *(key "=" value %x01) %x01 to its end (RFC 7628
// section 3.1: key is letters, value has no %x01). The last value of a
// key wins.
func kvPairs(b []byte) (map[string][]byte, bool) {
	if len(b) < 2 || b[0] != 0x01 || b[len(b)-1] != 0x01 {
		return nil, false
	}
	b = b[1 : len(b)-1]
	m := map[string][]byte{}
	for len(b) > 0 {
		j := bytes.IndexByte(b, 0x01)
		if j < 0 {
			return nil, false
		}
		kv := b[:j]
		b = b[j+1:]
		k := bytes.IndexByte(kv, '=')
		if k <= 0 {
			return nil, false
		}
		for _, c := range kv[:k] {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
				return nil, false
			}
		}
		m[string(kv[:k])] = kv[k+1:]
	}
	return m, true
}
