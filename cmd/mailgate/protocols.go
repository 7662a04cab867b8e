package main

import "mailgate/mail"

// protocols is the set of mail protocol modules compiled in, by the name
// used in the protocol directive. Adding a protocol is one line here.
func protocols() map[string]mail.Protocol {
	return map[string]mail.Protocol{}
}
