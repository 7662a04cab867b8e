package proxy

// The mailgate-only ID step of the IMAP upstream login (imap_forward_id,
// docs/imap.md "ID"): after the greeting and before LOGIN or AUTHENTICATE,
//
//	mgid1 ID ("name" "..." "x-originating-ip" "192.0.2.1" ...)
//
// with a tag of its own (mgid2 if the client's tag is mgid1). Untagged
// lines before the tagged reply (the upstream's "* ID ...") are skipped;
// the tagged reply may be OK, NO or BAD: an upstream that does not take ID
// still gets the login.

import (
	"bytes"

	"mailgate/mail/errlog"
)

// ActionSendID is the action text of the ID step (nginx has none).
const ActionSendID = "sending ID to upstream"

// idTag is the tag of the upstream ID command, with its space.
func idTag(client []byte) []byte {
	if bytes.Equal(client, []byte("mgid1 ")) {
		return []byte("mgid2 ")
	}
	return []byte("mgid1 ")
}

func (d *dialog) imapID() error {
	tag := idTag(d.p.Tag)
	line := cmdLine(tag, []byte("ID "), d.p.IMAPID)
	d.action = ActionSendID
	if d.p.Trace != nil {
		d.p.Trace(ActionSendID, line)
	}
	if err := d.send(line); err != nil {
		return err
	}
	return d.idReply(tag)
}

// idReply reads up to the line that starts with tag. A line that is
// neither untagged nor tagged with tag is an invalid response, as in the
// rest of the dialog.
func (d *dialog) idReply(tag []byte) error {
	for {
		n, err := d.conn.Read(d.buf[len(d.buf):d.size])
		if n > 0 {
			d.action = ActionReading
			d.buf = d.buf[:len(d.buf)+n]
			for {
				i := bytes.Index(d.buf, []byte("\r\n"))
				if i < 0 {
					break
				}
				line := d.buf[:i+2]
				switch {
				case bytes.HasPrefix(line, tag):
					if d.p.Trace != nil {
						d.p.Trace("upstream replied", line)
					}
					d.buf = d.buf[:0]
					return nil
				case bytes.HasPrefix(line, []byte("* ")):
					if d.p.Trace != nil {
						d.p.Trace("upstream replied", line)
					}
					d.buf = d.buf[:copy(d.buf, d.buf[i+2:])]
				default:
					d.buf = line
					return d.invalid(0)
				}
			}
			if len(d.buf) == d.size {
				return d.tooLong()
			}
			continue
		}
		if err == nil {
			continue
		}
		if !errlog.IsTimeout(err) {
			d.action = ActionReading
		}
		return d.ioError("recv", err)
	}
}
