package ngx

import "testing"

func TestAtoi(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"143", 143, true}, {"007", 7, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false}, {"18446744073709551615", 0, false},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1 ", 0, false}, {"1x", 0, false},
	}
	for _, tt := range tests {
		n, ok := Atoi(tt.in)
		nb, okb := Atoi([]byte(tt.in))
		if n != tt.want || ok != tt.ok || nb != n || okb != ok {
			t.Errorf("Atoi(%q) = %d, %v (bytes %d, %v); want %d, %v", tt.in, n, ok, nb, okb, tt.want, tt.ok)
		}
	}
}

func TestInetAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"}, {"127..1.1", "127.0.1.1"}, {"...", "0.0.0.0"},
		{"255.255.255.255", "255.255.255.255"}, {"010.1.1.1", "10.1.1.1"},
		{"256.0.0.1", ""}, {"1.2.3", ""}, {"1.2.3.4.5", ""}, {"1.2.3.x", ""}, {"", ""}, {"::1", ""},
	}
	for _, tt := range tests {
		a, ok := InetAddr(tt.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("InetAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzAtoi(f *testing.F) {
	for _, s := range []string{"0", "65535", "9223372036854775807", "99999999999999999999", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := Atoi(s)
		if ok && (n < 0 || len(s) == 0) {
			t.Fatalf("Atoi(%q) = %d", s, n)
		}
	})
}
