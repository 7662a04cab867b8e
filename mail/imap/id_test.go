package imap

import (
	"reflect"
	"strings"
	"testing"

	"mailgate/confparse"
	"mailgate/mail"
)

func TestParseIDList(t *testing.T) {
	f := func(kv ...string) []mail.IDField {
		var out []mail.IDField
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "\x00NIL" {
				out = append(out, mail.IDField{Name: kv[i], Nil: true})
			} else {
				out = append(out, mail.IDField{Name: kv[i], Value: kv[i+1]})
			}
		}
		return out
	}
	pairs := func(n int) string {
		return "(" + strings.TrimSpace(strings.Repeat(`"f" "v" `, n)) + ")"
	}
	for _, c := range []struct {
		in   string
		want []mail.IDField
		bad  bool
	}{
		{in: "NIL"},
		{in: "nil\r"},
		{in: "()"},
		{in: `("name" "Thunderbird")`, want: f("name", "Thunderbird")},
		{in: `("name" "Thunderbird" "version" "115.3")` + "\r", want: f("name", "Thunderbird", "version", "115.3")},
		{in: `("name" NIL)`, want: f("name", "\x00NIL")},
		{in: `("a\"b" "c\\d")`, want: f(`a"b`, `c\d`)},
		{in: `("name" "")`, want: f("name", "")},
		{in: "({4}\r\nname {3+}\r\nx\ny)", want: f("name", "x\ny")},
		{in: "(\"n\" {0}\r\n)", want: f("n", "")},
		{in: pairs(30), want: f(strings.Split(strings.Repeat("f v ", 30), " ")[:60]...)},
		{in: `("` + strings.Repeat("f", 30) + `" "` + strings.Repeat("v", 1024) + `")`, want: f(strings.Repeat("f", 30), strings.Repeat("v", 1024))},
		{in: pairs(31), bad: true},
		{in: `("` + strings.Repeat("f", 31) + `" "v")`, bad: true},
		{in: `("f" "` + strings.Repeat("v", 1025) + `")`, bad: true},
		{in: "(\"f\" {1025}\r\n" + strings.Repeat("v", 1025) + ")", bad: true},
		{in: "", bad: true},
		{in: "NILL", bad: true},
		{in: "(", bad: true},
		{in: `("name")`, bad: true},
		{in: `(name "x")`, bad: true},
		{in: `("" "x")`, bad: true},
		{in: `(NIL "x")`, bad: true},
		{in: `("name"  "x")`, bad: true},
		{in: `( "name" "x")`, bad: true},
		{in: `("name" "x" )`, bad: true},
		{in: `("name" "x") `, bad: true},
		{in: `("name" "x")("a" "b")`, bad: true},
		{in: `("name" "x"`, bad: true},
		{in: `("name" "x\y")`, bad: true},
		{in: "(\"name\" \"\xc3\xa9\")", bad: true},
		{in: "(\"name\" {2}\r\nx)", bad: true},
		{in: "(\"name\" {1}\r\n\x00)", bad: true},
		{in: `("name", "x")`, bad: true},
	} {
		got, err := parseIDList([]byte(c.in))
		if c.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", c.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// FuzzIDList feeds arbitrary parameter lists to the strict ID parser: it
// never panics, what it accepts keeps RFC 2971's limits, and the answer
// mailgate would render for accepted fields parses back to the same
// fields.
func FuzzIDList(f *testing.F) {
	for _, s := range []string{
		"NIL", "()", `("name" "Thunderbird" "version" "115.3")`, `("a\"b" NIL)`,
		"({4}\r\nname {3+}\r\nx\ny)", `("name" "x") `, "(\"f\" {0}\r\n)",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fields, err := parseIDList(in)
		if err != nil {
			return
		}
		if len(fields) > confparse.IMAPIDMaxPairs {
			t.Fatalf("%d pairs", len(fields))
		}
		var conf [][2]string
		plain := true
		for _, fl := range fields {
			if fl.Name == "" || len(fl.Name) > confparse.IMAPIDMaxField || len(fl.Value) > confparse.IMAPIDMaxValue {
				t.Fatalf("field %q = %q out of bounds", fl.Name, fl.Value)
			}
			if fl.Nil && fl.Value != "" {
				t.Fatalf("NIL with a value %q", fl.Value)
			}
			conf = append(conf, [2]string{fl.Name, fl.Value})
			plain = plain && !fl.Nil && !strings.ContainsAny(fl.Name+fl.Value, "\x00\r\n") && isASCII(fl.Name+fl.Value)
		}
		if !plain || len(fields) == 0 {
			return
		}
		line := string(buildIDReply(conf))
		again, err := parseIDList([]byte(strings.TrimSuffix(strings.TrimPrefix(line, "* ID "), "\r\n")))
		if err != nil || !reflect.DeepEqual(again, fields) {
			t.Fatalf("%+v rendered as %q parses to %+v, %v", fields, line, again, err)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
