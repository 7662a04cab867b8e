package imap

import (
	"bytes"
	"io"
	"reflect"
	"testing"
	"time"

	"mailgate/confparse"
	"mailgate/mail/mailtest"
)

// FuzzIMAPParse feeds arbitrary bytes to the parser, whole and split at a
// fuzzed point, in both the command and the SASL-continuation modes. It
// checks that the parser never panics, never claims more bytes than it was
// given, keeps its output within the size of its input (bounded memory),
// never writes into the buffer, and that the real engine gives the same
// transcript however the bytes are split (where nginx's would not depend on
// it either).
func FuzzIMAPParse(f *testing.F) {
	seeds := []string{
		"a1 CAPABILITY\r\n",
		"a LOGIN {4}\r\ntest {6+}\r\nsecret\r\n",
		"a LOGIN \"us\\\"er\" \"p a\\\\ss\"\r\n",
		"a LOGIN \"x y\r\nb LOGIN x y\r\n",
		"a FOO {3+}\r\nabc\r\n",
		"a LOGIN {0}\r\nx pass\r\n",
		"a LOGIN {99999999999999999999}\r\n",
		"a AUTHENTICATE PLAIN\r\nAHRlc3QAYmFk a b c\r\n",
		"a AUTHENTICATE LOGIN\r\n!!!\r\nb NOOP\r\n",
		" NOOP\r\n\r\na5\r\n",
		"a LOGIN {4}\r\nuser{4}\r\npass\r\n",
		"a ID (\"name\" \"Thunderbird\" \"version\" NIL)\r\n",
		"a ID ({4}\r\nname {3+}\r\nx\ny)\r\nb NOOP\r\n",
		"a ID NIL\r\n",
		"a ID (\"a\\\"\" \"\r\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint16(i*3), false)
		f.Add([]byte(s), uint16(i), true)
	}
	e := start(f, "imap_auth plain login cram-md5 external; imap_capabilities IMAP4rev1 SASL-IR ID; max_errors 1000000;", false, "", "")
	f.Fuzz(func(t *testing.T, in []byte, split uint16, cont bool) {
		if len(in) > 1<<16 {
			return
		}
		orig := append([]byte(nil), in...)
		for i := range 4 {
			quoted, id := i&1 != 0, i&2 != 0
			pp := parsePass{cont: cont, quoted: quoted, id: id}
			out := pp.run(in)
			if !bytes.Equal(in, orig) {
				t.Fatal("parser wrote into its buffer")
			}
			if out != outNeedMore && (pp.n <= 0 || pp.n > len(in)) {
				t.Fatalf("n = %d of %d", pp.n, len(in))
			}
			if len(pp.cmd.args) > maxArgs {
				t.Fatalf("%d arguments", len(pp.cmd.args))
			}
			total := 0
			for _, a := range pp.cmd.args {
				total += len(a)
			}
			if total > len(in) {
				t.Fatalf("arguments hold %d bytes of %d", total, len(in))
			}
			if len(pp.tag) > maxTag+1 {
				t.Fatalf("tag of %d bytes", len(pp.tag))
			}
			if pp.syncLits > len(in)/3 {
				t.Fatalf("%d literals in %d bytes", pp.syncLits, len(in))
			}
			// A second pass over the same bytes sees the same thing.
			again := parsePass{cont: cont, quoted: quoted, id: id}
			if again.run(in) != out || again.n != pp.n || again.syncLits != pp.syncLits {
				t.Fatal("second pass differs")
			}
			// A pass resumed after a prefix ends the same as one pass.
			k := int(split) % (len(in) + 1)
			res := parsePass{cont: cont, quoted: quoted, id: id}
			o := res.run(in[:k])
			if o == outNeedMore {
				if !res.resumes(in) {
					t.Fatal("pass cannot resume over its own bytes")
				}
				o = res.run(in)
			}
			if o != out || res.n != pp.n || res.syncLits != pp.syncLits || res.quit != pp.quit ||
				res.quoted != pp.quoted || !reflect.DeepEqual(res.cmd.args, pp.cmd.args) || res.cmd.verb != pp.cmd.verb ||
				!reflect.DeepEqual(res.cmd.idFields, pp.cmd.idFields) {
				t.Fatalf("resumed at %d: %v n=%d lits=%d args=%q, one pass: %v n=%d lits=%d args=%q",
					k, o, res.n, res.syncLits, res.cmd.args, out, pp.n, pp.syncLits, pp.cmd.args)
			}
			if res.scanned > len(in) {
				t.Fatalf("resumed pass scanned %d of %d bytes", res.scanned, len(in))
			}
		}

		// The too-long log rendering takes any buffer.
		rd, _ := newHandler(t, allMethodsConf(), io.Discard)
		rd.cont = cont
		if red := rd.RedactLog(in); len(red) > len(in)+3*len(in)/2+3 {
			t.Fatalf("redacted %d bytes into %d", len(in), len(red))
		}

		// Split and whole reads must agree when the packet boundary cannot
		// matter to nginx either: everything fits in the buffer, and no
		// "+}" line (whose effect depends on where in the buffer it lands,
		// and so on how the bytes arrived).
		if len(in) > DefaultClientBuffer/2 || bytes.Contains(in, []byte("+}")) {
			return
		}
		k := int(split) % (len(in) + 1)
		w, p := session(t, e, in, len(in)), session(t, e, in, k, len(in)-k)
		if w != p {
			t.Fatalf("split at %d changes the transcript\nwhole %q\nparts %q", k, w, p)
		}
	})
}

// session runs in through the real engine, read in pieces of the sizes
// given, and returns what the client received (salts normalised) once the
// client has closed its side.
func session(t *testing.T, e *env, in []byte, cuts ...int) string {
	e.auth.Script(nil)
	c := e.DialCut(t, 0, cuts...)
	c.Send(string(in)) //nolint:errcheck
	c.CloseWrite()     //nolint:errcheck
	out := c.ReadAll(5 * time.Second)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("the session did not end; client got %q", out)
	}
	return mailtest.NormalizeSalts(out)
}

// allMethodsConf is a server block with every method, for handler unit
// tests.
func allMethodsConf() *confparse.Server {
	c := defaultConf()
	c.IMAP.Auth = confparse.AuthPlain | confparse.AuthLogin | confparse.AuthCRAMMD5 | confparse.AuthExternal
	c.IMAP.Capabilities = []string{"IMAP4rev1", "SASL-IR", "ID"}
	c.Core.MaxErrors = 3
	return c
}
