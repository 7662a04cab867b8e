package main

import (
	"mailgate/mail"
	"mailgate/mail/imap"
	"mailgate/mail/pop3"
	"mailgate/mail/smtp"
)

// protocols is the set of mail protocol modules compiled in, by the name
// used in the protocol directive.
func protocols() map[string]mail.Protocol {
	return map[string]mail.Protocol{
		"pop3": pop3.Protocol{},
		"imap": imap.Protocol{},
		"smtp": smtp.Protocol{},
	}
}
