package confparse

// mergeMail runs at the end of the mail{} block, like ngx_mail_block: for
// each mail module in order (core, ssl, pop3, imap, smtp, auth_http,
// proxy, realip), every server in file order is merged with the mail{}
// level. The first error stops Load; Check goes on with the next server.
func (l *loader) mergeMail() error {
	if err := l.checkHTTPSAuth(); err != nil {
		return err
	}
	var servers []*Server
	for _, sv := range l.servers {
		s := &Server{Pos: sv.pos, Sources: map[string]Pos{}}
		l.srvByLvl[sv] = s
		servers = append(servers, s)
	}
	steps := []func(*Server, *level) error{
		l.mergeCore, l.mergeSSL, l.mergePOP3, l.mergeIMAP, l.mergeSMTP,
		l.mergeAuthHTTP, l.mergeProxy, l.mergeRealIP,
		l.mergeAccessLog, // mailgate-only
	}
	for _, step := range steps {
		for i, sv := range l.servers {
			if err := step(servers[i], sv); err != nil {
				return err
			}
		}
	}
	m := l.cfg.Mail
	for i, sv := range l.servers {
		s := servers[i]
		for _, ls := range sv.listens {
			ls.Server = s
		}
		s.Listens = sv.listens
		m.Servers = append(m.Servers, s)
	}
	m.Listens = l.listens
	return nil
}
