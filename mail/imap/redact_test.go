package imap

import (
	"io"
	"strings"
	"testing"
)

func TestRedactLog(t *testing.T) {
	cases := []struct {
		name string
		cont bool
		in   string
		want string
	}{
		{"login atoms", false, "a LOGIN alice secret\r\nb NOOP\r\nc LOGIN x", "a LOGIN ***\r\nb NOOP\r\nc LOGIN ***"},
		{"login quoted", false, "a LOGIN \"al ice\" \"se cret\"\r\n", "a LOGIN ***\r\n"},
		{"login literals with CRLF inside", false, "a LOGIN {5}\r\nalice {8}\r\nse\r\ncret\r\nb NOOP\r\n", "a LOGIN ***\r\nb NOOP\r\n"},
		{"login {0}", false, "a LOGIN {0}\r\nx secret\r\nb CAPABILITY\r\n", "a LOGIN ***\r\nb CAPABILITY\r\n"},
		{"unfinished literal", false, "a LOGIN alice {10}\r\nsecr", "a LOGIN ***"},
		{"authenticate initial response", false, "a AUTHENTICATE PLAIN AHUAc2VjcmV0\r\n", "a AUTHENTICATE PLAIN***\r\n"},
		{"authenticate exchange", false, "a AUTHENTICATE LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nb NOOP\r\n",
			"a AUTHENTICATE LOGIN\r\n***\r\n***\r\nb NOOP\r\n"},
		{"unfinished sasl line", true, "c2VjcmV0c2Vj", "***"},
		{"unfinished sasl line after its command", true, "a AUTHENTICATE PLAIN\r\nAHUAc2Vj", "a AUTHENTICATE PLAIN\r\n***"},
		{"other lines kept", false, "x FOO bar\r\n\r\nnotag\r\na NOOP {3}\r\nabc\r\n", "x FOO bar\r\n\r\nnotag\r\na NOOP {3}\r\nabc\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHandler(t, nil, io.Discard)
			h.cont = tc.cont
			got := string(h.RedactLog([]byte(tc.in)))
			if got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			for _, secret := range []string{"secret", "se\r\ncret", "c2VjcmV0", "AHUAc2Vj", "secr"} {
				if strings.Contains(tc.want, secret) {
					t.Fatalf("bad case: want holds %q", secret)
				}
				if strings.Contains(got, secret) {
					t.Errorf("%q leaks in %q", secret, got)
				}
			}
		})
	}
}
