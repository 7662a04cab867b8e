package auth

import (
	"bytes"
	"io"
	"strconv"
)

// AppendRequest appends the auth_http request for req to dst, byte for
// byte as nginx writes it (docs/auth_http.md, "Request"): the request line, Host, the Auth-*
// headers in nginx's order, the extra auth_http_header lines verbatim, then
// the empty line.
//
// Differences from nginx 1.22.1, following newer nginx on purpose:
// Auth-Salt is sent only for the apop and cram-md5 methods (1.22.1 also
// sends it for external when a salt exists).
//
// Only Auth-User, Auth-Pass and Auth-SSL-Cert are escaped; every other
// value goes out as given, as in nginx.
func AppendRequest(dst []byte, host, uri string, req *Request, extra [][2]string) []byte {
	b := dst
	line := func(name, value string) {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
	}
	lineBytes := func(name string, value []byte) {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
	}

	b = append(b, "GET "...)
	b = append(b, uri...)
	b = append(b, " HTTP/1.0\r\n"...)
	line("Host", host)
	line("Auth-Method", req.Method)

	b = append(b, "Auth-User: "...)
	b = AppendEscape(b, req.User)
	b = append(b, "\r\nAuth-Pass: "...)
	b = AppendEscape(b, req.Pass)
	b = append(b, "\r\n"...)

	if salt := trimCRLF(req.Salt); len(salt) > 0 &&
		(req.Method == MethodAPOP || req.Method == MethodCRAMMD5) {
		lineBytes("Auth-Salt", salt)
	}

	line("Auth-Protocol", req.Protocol)
	line("Auth-Login-Attempt", strconv.Itoa(req.LoginAttempt))
	line("Client-IP", req.ClientIP)
	if req.HasClientHost && req.ClientHost != "" {
		line("Client-Host", req.ClientHost)
	}
	if pp := req.ProxyProtocol; pp != nil {
		line("Proxy-Protocol-Addr", pp.Addr)
		line("Proxy-Protocol-Port", pp.Port)
		line("Proxy-Protocol-Server-Addr", pp.ServerAddr)
		line("Proxy-Protocol-Server-Port", pp.ServerPort)
	}
	if req.Method == MethodNone {
		lineBytes("Auth-SMTP-Helo", req.SMTPHelo)
		lineBytes("Auth-SMTP-From", req.SMTPFrom)
		lineBytes("Auth-SMTP-To", req.SMTPTo)
	}
	if t := req.TLS; t != nil {
		b = append(b, "Auth-SSL: on\r\n"...)
		for _, h := range [...][2]string{
			{"Auth-SSL-Protocol", t.Protocol},
			{"Auth-SSL-Cipher", t.Cipher},
			{"Auth-SSL-Verify", t.Verify},
			{"Auth-SSL-Subject", t.Subject},
			{"Auth-SSL-Issuer", t.Issuer},
			{"Auth-SSL-Serial", t.Serial},
			{"Auth-SSL-Fingerprint", t.Fingerprint},
		} {
			if h[1] != "" {
				line(h[0], h[1])
			}
		}
		if t.Cert != "" {
			b = append(b, "Auth-SSL-Cert: "...)
			b = AppendEscape(b, []byte(t.Cert))
			b = append(b, "\r\n"...)
		}
	}
	for _, h := range req.Extra {
		line(h[0], h[1])
	}
	for _, h := range extra {
		line(h[0], h[1])
	}
	return append(b, "\r\n"...)
}

// WriteRequest writes the request built by AppendRequest to w.
func WriteRequest(w io.Writer, host, uri string, req *Request, extra [][2]string) error {
	_, err := w.Write(AppendRequest(nil, host, uri, req, extra))
	return err
}

// needsEscape reports whether nginx's mail auth escaping changes c: the
// control bytes 0x00-0x1F, space and '%'.
func needsEscape(c byte) bool { return c <= ' ' || c == '%' }

// AppendEscape appends s with nginx's auth_http escaping (docs/auth_http.md, "Request"): bytes
// 0x00-0x20 and '%' become %XX with upper-case hex, all others are kept.
func AppendEscape(dst, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if needsEscape(c) {
			dst = append(dst, '%', hex[c>>4], hex[c&0xf])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// trimCRLF drops a trailing CRLF (nginx keeps one at the end of its salt).
func trimCRLF(s []byte) []byte {
	s = bytes.TrimSuffix(s, []byte("\n"))
	return bytes.TrimSuffix(s, []byte("\r"))
}
