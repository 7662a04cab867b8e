import os, sys, json, shutil
root = sys.argv[1]
cases = {}
H = "pid nginx.pid;\nevents {}\n"
AUTH = "127.0.0.1:20080/auth"

def mail(body, head=H):
    return head + "mail {\n" + body + "}\n"

def srv(body, auth=True, listen="127.0.0.1:20143", proto="imap"):
    s = "    server {\n"
    if listen: s += "        listen %s;\n" % listen
    if proto: s += "        protocol %s;\n" % proto
    s += "".join("        %s\n" % l for l in body.strip("\n").split("\n") if l) if body else ""
    s += "    }\n"
    return s

def one(body="", mailbody="", **kw):
    return mail(("    auth_http %s;\n" % AUTH) + mailbody + srv(body, **kw))

def add(name, conf, files=None, args=None):
    assert name not in cases, name
    cases[name] = (conf, files or {}, args or [])

SSL = "ssl_certificate test.crt;\nssl_certificate_key test.key;"

# --- basic and protocol decisions
add("ok_minimal_imap", one())
add("ok_minimal_pop3_port_guess", one(listen="127.0.0.1:110", proto=None))
add("ok_minimal_smtp_port_guess", one(listen="127.0.0.1:587", proto=None))
add("ok_proto_first_known_port", mail("    auth_http %s;\n    server {\n        listen 127.0.0.1:20604;\n        listen 127.0.0.1:587;\n        listen 127.0.0.1:143;\n    }\n" % AUTH))
add("ok_proto_explicit_beats_port", one("protocol pop3;", listen="127.0.0.1:143", proto=None))
add("err_unknown_mail_protocol", one(proto=None))
add("err_protocol_uppercase", one(proto="IMAP"))
add("err_protocol_bogus", one(proto="nntp"))
add("err_no_auth_http", mail(srv("")))
add("err_no_listen", one(listen=None))
add("ok_empty_mail", mail(""))
add("err_mail_duplicate", H + "mail {\n}\nmail {\n}\n")
add("err_no_events", "pid nginx.pid;\nmail {\n}\n")
add("err_events_duplicate", H + "events {}\n")
add("ok_protocol_last_wins", one("protocol pop3;"))
add("ok_auth_http_last_wins", one("auth_http 127.0.0.1:20081/b;\nauth_http 127.0.0.1:20082/c;"))
add("err_errors_core_before_auth", mail(srv("", proto=None, listen="127.0.0.1:20601") + srv("", listen="127.0.0.1:20602")))
add("err_two_servers_second_bad", mail("    auth_http %s;\n" % AUTH + srv("") + srv("", listen="127.0.0.1:20144", proto=None)))

# --- listen
add("err_listen_port_70000", one(listen="127.0.0.1:70000"))
add("err_listen_port_zero", one(listen="127.0.0.1:0"))
add("ok_listen_port_range", one(listen="127.0.0.1:20610-20612"))
add("err_listen_port_range_reversed", one(listen="127.0.0.1:20702-20701"))
add("err_listen_unix_no_path", one(listen="unix:"))
add("ok_listen_unix", one(listen="unix:/tmp/mailgate-corpus.sock"))
add("ok_listen_no_port", one(listen="127.0.0.1"))
add("ok_listen_wildcard_port_only", one(listen="20145"))
add("ok_listen_ipv6", one(listen="[::1]:20146"))
add("err_listen_duplicate_across_servers", mail("    auth_http %s;\n" % AUTH + srv("") + srv("", proto="pop3")))
add("err_listen_duplicate_wildcard", one("listen *:20147;", listen="20147"))
add("ok_listen_wildcard_and_specific", one("listen 20143;"))
add("ok_listen_params", one(listen="127.0.0.1:20148 bind backlog=10 rcvbuf=8k sndbuf=16k so_keepalive=30s:10:3"))
add("ok_listen_ipv6only_off", one(listen="[::]:20149 ipv6only=off"))
add("ok_listen_keepalive_on", one(listen="127.0.0.1:20150 so_keepalive=on"))
add("err_listen_backlog_zero", one(listen="127.0.0.1:20151 backlog=0"))
add("err_listen_backlog_word", one(listen="127.0.0.1:20151 backlog=many"))
add("err_listen_rcvbuf_bad", one(listen="127.0.0.1:20152 rcvbuf=x"))
add("err_listen_sndbuf_bad", one(listen="127.0.0.1:20152 sndbuf=1q"))
add("err_listen_ipv6only_bad", one(listen="[::1]:20153 ipv6only=ox"))
add("err_listen_keepalive_bad", one(listen="127.0.0.1:20154 so_keepalive=bad"))
add("err_listen_keepalive_colons", one(listen="127.0.0.1:20154 so_keepalive=:::"))
add("err_listen_default_server", one(listen="127.0.0.1:20155 default_server"))
add("err_listen_reuseport", one(listen="127.0.0.1:20155 reuseport"))
add("err_listen_multipath", one(listen="127.0.0.1:20155 multipath"))
add("err_listen_no_args", one("listen;"))
add("err_listen_in_mail", mail("    listen 127.0.0.1:20143;\n"))
add("err_protocol_in_mail", mail("    protocol imap;\n"))

# --- ssl
add("err_listen_ssl_no_cert", one(listen="127.0.0.1:20993 ssl"))
add("ok_listen_ssl_cert", one(SSL, listen="127.0.0.1:20993 ssl"))
add("err_starttls_no_cert", one("starttls on;"))
add("ok_starttls_only", one("starttls only;\n" + SSL))
add("err_starttls_bad_value", one("starttls yes;"))
add("ok_ssl_on_deprecated", one("ssl on;\n" + SSL))
add("err_ssl_on_no_cert", one("ssl on;"))
add("err_ssl_on_then_starttls", one("ssl on;\nstarttls on;\n" + SSL))
add("err_starttls_then_ssl_on", one("starttls on;\nssl on;\n" + SSL))
add("ok_mail_level_cert_inherited", one("starttls on;", mailbody="    " + SSL.replace("\n", "\n    ") + "\n"))
add("err_mail_level_starttls_no_cert", one("", mailbody="    starttls on;\n"))
add("err_cert_without_key", one("starttls on;\nssl_certificate test.crt;"))
add("err_cert_file_missing", one("starttls on;\nssl_certificate nothere.crt;\nssl_certificate_key test.key;"))
add("ok_ssl_protocols", one("ssl_protocols TLSv1.2 TLSv1.3;\nssl_ciphers HIGH:!aNULL;\nssl_prefer_server_ciphers on;"))
add("err_ssl_protocols_bad", one("ssl_protocols TLSv9;"))
add("warn_ssl_protocols_dup_value", one("ssl_protocols TLSv1.2 TLSv1.2;"))
add("ok_ssl_session_cache_shared", one("ssl_session_cache shared:MAIL:10m;\nssl_session_timeout 10m;"))
add("err_ssl_session_cache_bad", one("ssl_session_cache foo;"))
add("err_ssl_session_timeout_ms", one("ssl_session_timeout 500ms;"))
add("ok_ssl_session_timeout_year", one("ssl_session_timeout 1y;"))
add("err_ssl_verify_client_no_ca", one("starttls on;\nssl_verify_client on;\n" + SSL))
add("err_ssl_verify_client_bad", one("ssl_verify_client sometimes;"))
add("ok_ssl_verify_client_ca", one("starttls on;\nssl_verify_client optional;\nssl_client_certificate test.crt;\nssl_verify_depth 2;\n" + SSL))
add("err_ssl_verify_depth_bad", one("ssl_verify_depth deep;"))
add("err_ssl_password_file_missing", one("ssl_password_file a.pass;\nssl_password_file b.pass;"))
add("err_ssl_session_tickets_bad", one("ssl_session_tickets maybe;"))
add("err_ssl_certificate_compression_122", one("ssl_certificate_compression on;"))

# --- core values
add("ok_timeout_forms", one("timeout 500ms;", mailbody="    timeout \"1h 30m\";\n"))
add("err_timeout_word", one("timeout abc;"))
add("err_timeout_year", one("timeout 1y;"))
add("err_timeout_negative", one("timeout -5;"))
add("err_timeout_two_args", one("timeout 1h 30m;"))
add("err_timeout_duplicate", one("timeout 5s;\ntimeout 6s;"))
add("err_timeout_duplicate_mail", one("", mailbody="    timeout 5s;\n    timeout 6s;\n"))
add("ok_timeout_server_overrides_mail", one("timeout 5s;", mailbody="    timeout 6s;\n"))
add("ok_server_name", one("server_name mail.example.org;"))
add("err_server_name_two_args", one("server_name a b;"))
add("err_server_name_duplicate", one("server_name a;\nserver_name b;"))
add("ok_max_errors_zero", one("max_errors 0;"))
add("err_max_errors_word", one("max_errors x;"))
add("ok_resolver", one("resolver 127.0.0.1 valid=30s ipv6=off;\nresolver_timeout 5s;", proto="smtp", listen="127.0.0.1:20025"))
add("ok_resolver_off", one("resolver off;"))
add("err_resolver_duplicate", one("resolver off;\nresolver 127.0.0.1;"))
add("err_resolver_timeout_bad", one("resolver_timeout soon;"))
add("ok_error_log_levels", one("error_log mail-server.log info;", mailbody="    error_log mail.log debug;\n"))
add("err_error_log_bad_level", one("error_log mail.log loud;"))
add("err_error_log_dup_level", one("error_log mail.log info warn;"))
add("err_error_log_dir_missing", one("error_log nodir/mail.log;"))
add("ok_main_error_log", "error_log main.log notice;\n" + one())

# --- auth_http
add("ok_auth_http_unix", one("auth_http unix:/tmp/mailgate-corpus-auth.sock:/auth;"))
add("ok_auth_http_scheme", one("auth_http http://127.0.0.1:20080/x;"))
add("ok_auth_http_localhost", one("auth_http localhost:20080/cgi-bin/auth;"))
add("err_auth_http_https", one("auth_http https://127.0.0.1/x;"))
add("err_auth_http_bad_port", one("auth_http 127.0.0.1:99999/x;"))
add("ok_auth_http_header", one("auth_http_header X-Auth-Port 143;\nauth_http_header Client-Port $remote_port;"))
add("err_auth_http_header_one_arg", one("auth_http_header X-Only;"))
add("err_auth_http_timeout_bad", one("auth_http_timeout forever;"))
add("err_auth_http_pass_client_cert_bad", one("auth_http_pass_client_cert maybe;"))

# --- protocol modules
add("ok_pop3_auth_methods", one("pop3_auth plain apop cram-md5 external;\npop3_capabilities TOP USER UIDL PIPELINING;", proto="pop3"))
add("err_pop3_auth_login", one("pop3_auth login;", proto="pop3"))
add("warn_pop3_auth_dup_value", one("pop3_auth plain PLAIN;", proto="pop3"))
add("ok_imap_auth", one("imap_auth plain login cram-md5;\nimap_capabilities IMAP4rev1 UIDPLUS SASL-IR ID;\nimap_client_buffer 8k;"))
add("err_imap_auth_apop", one("imap_auth apop;"))
add("err_imap_capabilities_no_args", one("imap_capabilities;"))
add("err_imap_client_buffer_bad", one("imap_client_buffer 1x;"))
add("ok_smtp_all", one("smtp_auth none;\nsmtp_capabilities PIPELINING \"SIZE 10240000\" 8BITMIME;\nsmtp_client_buffer 16k;\nsmtp_greeting_delay 1s;\nxclient ON;\nproxy_smtp_auth on;", proto="smtp", listen="127.0.0.1:20025"))
add("err_smtp_auth_apop", one("smtp_auth apop;", proto="smtp", listen="127.0.0.1:20025"))
add("err_smtp_greeting_delay_bad", one("smtp_greeting_delay later;", proto="smtp", listen="127.0.0.1:20025"))
add("err_smtp_client_buffer_bad", one("smtp_client_buffer big;", proto="smtp", listen="127.0.0.1:20025"))

# --- proxy / realip
add("ok_proxy_all", one("proxy on;\nproxy_buffer 8k;\nproxy_timeout 10m;\nproxy_pass_error_message on;\nproxy_protocol on;"))
add("err_proxy_bad", one("proxy yes;"))
add("err_proxy_buffer_bad", one("proxy_buffer lots;"))
add("err_proxy_timeout_bad", one("proxy_timeout 1M;"))
add("err_proxy_protocol_v2_122", one("proxy_protocol v2;"))
add("err_xclient_bad", one("xclient 1;"))
add("err_proxy_duplicate", one("proxy_timeout 1h;\nproxy_timeout 2h;"))
add("ok_set_real_ip_from", one("set_real_ip_from 10.0.0.0/8;\nset_real_ip_from ::1;\nset_real_ip_from unix:;", listen="127.0.0.1:20143 proxy_protocol"))
add("warn_set_real_ip_from_low_bits", one("set_real_ip_from 10.0.0.1/8;"))
add("err_set_real_ip_from_bad_cidr", one("set_real_ip_from 10.0.0.0/40;"))

# --- contexts
add("err_server_in_server", one("server {\n}"))
add("err_mail_in_http", H + "http {\n    mail {\n    }\n}\n")
add("err_proxy_pass_in_mail", one("proxy_pass http://127.0.0.1;"))
add("err_unknown_directive_in_server", one("foo_bar on;"))
add("err_timeout_in_main", "timeout 5s;\n" + H)
add("err_auth_http_in_events", "pid nginx.pid;\nevents {\n    auth_http 127.0.0.1:1;\n}\n")
add("ok_stream_block", H + "stream {\n}\n")
add("err_mail_has_args", H + "mail x {\n}\n")
add("err_server_has_args", mail("    server x {\n    }\n"))

# --- grammar
add("err_missing_semicolon_eof", H + "worker_processes 1")
add("err_stray_brace", H + "}\n")
add("err_eof_in_block", H + "mail {\n    server {\n")
add("err_not_terminated", one("server_name {a};"))
add("err_no_opening_brace", H + "mail;\n")
add("err_unexpected_after_quote", one("protocol \"imap\"x;", proto=None))
add("ok_quoted_values", one("protocol 'imap';\nauth_http \"127.0.0.1:20080/q\";\nserver_name \"a\\\"b\";", proto=None))
add("ok_escapes", one("auth_http_header X-Test \"va\\tl\\\\ue\";\nserver_name x\\ y;"))
add("ok_comments", "# leading comment\n" + H + "mail { # trailing\n    auth_http %s; # c\n    server {\n        listen 127.0.0.1:20143; #x\n        protocol imap;\n        server_name a#b;\n    }\n}\n# end\n" % AUTH)
add("ok_multiline_quoted", one("smtp_capabilities \"SIZE\n10\" PIPELINING;"))
add("err_empty_directive", one(";"))
add("err_too_long_parameter", one("server_name %s;" % ("x" * 5000)))
add("err_unterminated_quote", one("server_name \"abc;"))
add("ok_variable_text", one("server_name ${host};"))
add("err_brace_token", one("server_name a;\n}"))
add("ok_crlf_line_endings", one().replace("\n", "\r\n"))
add("ok_tabs_and_blank_lines", one().replace("    ", "\t").replace("\n", "\n\n"))

add("ok_quoted_space_value", one("server_name \"mail example\";\nauth_http_header \"X-A\" 'b c';"))
add("ok_single_quote_escape", one("server_name 'it\\'s';"))
add("ok_hash_inside_quotes", one("server_name \"a # not a comment\";"))
add("ok_comment_after_brace", H + "mail { # c\n    auth_http %s; server { # c2\n listen 127.0.0.1:20143; protocol imap; } }\n" % AUTH)
add("ok_directive_split_lines", one("auth_http_header\n    X-Split\n    value\n    ;"))
add("ok_utf8_value", one("server_name \"m\u00e4il.example\";"))
add("err_unexpected_after_single_quote", one("server_name 'a'b;"))
add("ok_quote_inside_token", one("server_name a\"b;"))
add("err_brace_at_token_start_inner", one("server_name x{a};"))
add("ok_dollar_brace", one("server_name a${b}c;"))
add("err_two_blocks_one_line", H + "mail { } mail { }\n")
add("err_semicolon_after_block", H + "mail { };\n")
add("ok_empty_server_block_file_end_no_newline", (H + "mail {\n    auth_http %s;\n    server { listen 127.0.0.1:20143; protocol imap; }\n}" % AUTH))
add("err_listen_hostname_unknown", one(listen="nosuchhost.invalid:20143"))
add("ok_listen_localhost", one(listen="localhost:20160"))

# --- includes
add("ok_include_relative", mail("    include auth.inc;\n" + srv("")), {"auth.inc": "auth_http %s;\n" % AUTH})
add("ok_include_glob", mail("    auth_http %s;\n    include conf.d/*.conf;\n" % AUTH), {"conf.d/a.conf": srv("", proto="imap"), "conf.d/b.conf": srv("", listen="127.0.0.1:20110", proto="pop3")})
add("ok_include_glob_nomatch", mail("    auth_http %s;\n    include nothere/*.conf;\n" % AUTH + srv("")))
add("err_include_missing", mail("    auth_http %s;\n    include missing.conf;\n" % AUTH + srv("")))
add("ok_include_nested", "include main.inc;\n", {"main.inc": H + "include mail.inc;\n", "mail.inc": mail("    auth_http %s;\n" % AUTH + srv("")).replace(H, "")})
add("ok_include_in_server", mail("    auth_http %s;\n    server {\n        include srv.inc;\n    }\n" % AUTH), {"srv.inc": "listen 127.0.0.1:20143;\nprotocol imap;\n"})
add("err_include_error_inside", mail("    auth_http %s;\n    server {\n        include srv.inc;\n    }\n" % AUTH), {"srv.inc": "listen 127.0.0.1:20143;\n\nprotocol nntp;\n"})
add("err_include_glob_order_dup", mail("    auth_http %s;\n    server {\n        listen 127.0.0.1:20143;\n        include t/*.conf;\n    }\n" % AUTH), {"t/b.conf": "timeout 2s;\n", "t/a.conf": "protocol imap;\ntimeout 1s;\n"})
add("ok_include_hidden_skipped", mail("    auth_http %s;\n    include conf.d/*.conf;\n" % AUTH), {"conf.d/a.conf": srv(""), "conf.d/.hidden.conf": "bogus_directive;\n"})
add("err_include_no_args", mail("    include;\n"))
add("ok_include_quoted_glob_charclass", mail("    auth_http %s;\n    include \"c/s[0-9].conf\";\n" % AUTH), {"c/s1.conf": srv(""), "c/sx.conf": "bogus;\n"})
add("ok_include_question_glob", mail("    auth_http %s;\n    include c/s?.conf;\n" % AUTH), {"c/s1.conf": srv("")})
add("ok_include_absolute_system_file", H + "http {\n    include /etc/nginx/mime.types;\n}\n" + mail("").replace(H, ""))
add("err_include_directory", mail("    include c;\n"), {"c/x.conf": "\n"})
add("err_include_error_line_in_nested", "include a.inc;\n", {"a.inc": H + "include b.inc;\n", "b.inc": "\n\nmail {\n    bogus on;\n}\n"})
add("err_include_eof_in_included", mail("    auth_http %s;\n    include part.inc;\n" % AUTH + srv("")), {"part.inc": "server {\n"})
add("err_include_merge_error_in_file", mail("    auth_http %s;\n    include srv.inc;\n" % AUTH), {"srv.inc": "\n\nserver {\n    listen 127.0.0.1:20143;\n}\n"})

# --- -g and main context
add("err_e_log_dir_missing", one(), args=["-e", "nodir/e.log"])
add("ok_e_log_with_config_error_log", "error_log main.log;\n" + one(), args=["-e", "nodir/e.log"])
add("err_g_pid_duplicate", one(), args=["-g", "pid other.pid;"])
add("err_g_missing_semicolon", one(), args=["-g", "worker_processes 2"])
add("err_g_block", one(), args=["-g", "events {}"])
add("err_g_unknown", one(), args=["-g", "foo;"])
add("ok_g_worker_processes", one(), args=["-g", "worker_processes 2; daemon off;"])
add("err_g_mail_directive", one(), args=["-g", "timeout 5s;"])
add("err_worker_processes_bad", "worker_processes abc;\n" + one())
add("ok_worker_processes_auto", "worker_processes auto;\nworker_rlimit_nofile 4096;\n" + one())
add("err_user_unknown", "user nosuchuser;\n" + one())
add("err_user_duplicate", "user root;\nuser root;\n" + one())
add("err_daemon_maybe", "daemon maybe;\n" + one())
add("ok_load_module_inline", "load_module /usr/lib/nginx/modules/ngx_mail_module.so;\n" + one())
add("err_master_process_dup", "master_process on;\nmaster_process off;\n" + one())
add("err_pid_dir_missing", one().replace("pid nginx.pid;", "pid nodir/nginx.pid;"))
add("ok_events_settings", one().replace("events {}", "events {\n    worker_connections 1024;\n    multi_accept on;\n}"))
add("err_worker_connections_bad", one().replace("events {}", "events {\n    worker_connections lots;\n}"))
add("ok_env_and_misc", "env TZ;\nworker_shutdown_timeout 10s;\ntimer_resolution 100ms;\npcre_jit on;\n" + one())

# --- command line shapes
add("dump_T_with_includes", mail("    include auth.inc;\n" + srv("")), {"auth.inc": "auth_http %s;\n" % AUTH}, args=["-T"])
add("dump_T_failed", one(proto=None), args=["-T"])
add("quiet_q_ok", one(), args=["-q"])
add("quiet_q_warning", one("pop3_auth plain plain;"), args=["-q"])
add("quiet_q_error", one(proto=None), args=["-q"])
add("dump_T_glob_include_once", mail("    auth_http %s;\n    include s/*.conf;\n    include s/a.conf;\n" % AUTH), {"s/a.conf": "\n", "s/b.conf": srv("")}, args=["-T"])

# --- realistic shapes
add("real_nginx_wiki_minimal", H + """mail {
    server_name mail.example.com;
    auth_http   localhost:9000/cgi-bin/nginxauth.cgi;

    imap_capabilities IMAP4rev1 UIDPLUS IDLE LITERAL+ QUOTA;

    pop3_auth         plain apop cram-md5;
    pop3_capabilities LAST TOP USER PIPELINING UIDL;

    smtp_auth         login plain cram-md5;
    smtp_capabilities "SIZE 10485760" ENHANCEDSTATUSCODES 8BITMIME DSN;
    xclient           off;

    server {
        listen   127.0.0.1:20025;
        protocol smtp;
    }
    server {
        listen   127.0.0.1:20110;
        protocol pop3;
        proxy_pass_error_message on;
    }
    server {
        listen   127.0.0.1:20143;
        protocol imap;
    }
}
""")
add("real_nginx_wiki_ssl_on", H + """mail {
    auth_http  localhost:9000/cgi-bin/auth;
    proxy      on;

    ssl                 on;
    ssl_certificate     test.crt;
    ssl_certificate_key test.key;
    ssl_session_timeout 5m;

    server {
        listen    127.0.0.1:20993;
        protocol  imap;
    }
}
""")
add("real_mailu_like", """user root;
worker_processes auto;
error_log stderr info;
pid nginx.pid;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;

    server {
        listen 127.0.0.1:20080;
        location /auth/email {
            return 200;
        }
    }
}

mail {
    server_name mail.example.org;
    auth_http http://127.0.0.1:20080/auth/email;
    proxy_pass_error_message on;
    resolver 127.0.0.11 valid=30s;
    error_log stderr info;

    include tls.conf;
    ssl_session_cache shared:SSLMAIL:3m;

    smtp_capabilities PIPELINING "SIZE 52428800" ETRN ENHANCEDSTATUSCODES 8BITMIME DSN;
    pop3_capabilities TOP UIDL RESP-CODES PIPELINING AUTH-RESP-CODE USER;
    imap_capabilities IMAP4 IMAP4rev1 UIDPLUS SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+;

    server {
        listen 127.0.0.1:20025;
        listen [::1]:20025;
        starttls on;
        protocol smtp;
        smtp_auth none;
        auth_http_header Auth-Port 25;
        auth_http_header Client-Port $remote_port;
    }

    server {
        listen 127.0.0.1:20143;
        listen [::1]:20143;
        starttls only;
        protocol imap;
        imap_auth plain;
        auth_http_header Auth-Port 143;
    }

    server {
        listen 127.0.0.1:20110;
        listen [::1]:20110;
        starttls only;
        protocol pop3;
        pop3_auth plain;
        auth_http_header Auth-Port 110;
    }

    server {
        listen 127.0.0.1:20587;
        listen [::1]:20587;
        starttls only;
        protocol smtp;
        smtp_auth plain login;
        auth_http_header Auth-Port 587;
    }

    server {
        listen 127.0.0.1:20465 ssl;
        listen [::1]:20465 ssl;
        protocol smtp;
        smtp_auth plain login;
        auth_http_header Auth-Port 465;
    }

    server {
        listen 127.0.0.1:20993 ssl;
        listen [::1]:20993 ssl;
        protocol imap;
        imap_auth plain;
        auth_http_header Auth-Port 993;
    }

    server {
        listen 127.0.0.1:20995 ssl;
        listen [::1]:20995 ssl;
        protocol pop3;
        pop3_auth plain;
        auth_http_header Auth-Port 995;
    }
}
""", {"tls.conf": "ssl_protocols TLSv1.2 TLSv1.3;\nssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;\nssl_prefer_server_ciphers off;\nssl_certificate test.crt;\nssl_certificate_key test.key;\n"})
add("real_mailu_mx_only", H + """mail {
    server_name mx.example.org;
    auth_http http://127.0.0.1:20080/internal/auth/email;
    proxy_pass_error_message on;
    error_log stderr info;
    ssl_certificate test.crt;
    ssl_certificate_key test.key;

    server {
        listen 127.0.0.1:20025 proxy_protocol;
        listen [::1]:20025;
        set_real_ip_from 10.0.0.0/8;
        set_real_ip_from 192.168.0.0/16;
        starttls on;
        protocol smtp;
        smtp_auth none;
        auth_http_header Auth-Port 25;
        auth_http_header Client-Port $remote_port;
    }
}
""")
add("real_zimbra_like", H + """mail {
    proxy_pass_error_message on;
    zm_auth_http http://127.0.0.1:7072/service/extension/nginx-lookup;
    imap_capabilities "IMAP4rev1" "ID" "LITERAL+" "SASL-IR";
    server {
        listen 127.0.0.1:20143;
        protocol imap;
        proxy on;
    }
}
""")
add("real_zimbra_like_stock_subset", H + """mail {
    proxy_pass_error_message on;
    auth_http 127.0.0.1:7072/service/extension/nginx-lookup;
    auth_http_timeout 60s;
    imap_capabilities "IMAP4rev1" "ID" "LITERAL+" "SASL-IR" "IDLE" "NAMESPACE";
    pop3_capabilities "TOP" "USER" "UIDL" "EXPIRE 31 USER";
    imap_auth plain login;
    server {
        listen 127.0.0.1:20143;
        protocol imap;
        proxy on;
        timeout 3600s;
        proxy_timeout 2100s;
        starttls on;
        ssl_certificate test.crt;
        ssl_certificate_key test.key;
    }
    server {
        listen 127.0.0.1:20993 ssl;
        protocol imap;
        proxy on;
        timeout 3600s;
        ssl_certificate test.crt;
        ssl_certificate_key test.key;
    }
    server {
        listen 127.0.0.1:20110;
        listen [::1]:20110 ipv6only=on;
        protocol pop3;
        proxy on;
        starttls off;
    }
}
""")
add("real_nauthilus_like", H + """mail {
    server_name mail.example.test;
    auth_http http://127.0.0.1:20090/mail/nginx;
    auth_http_pass_client_cert on;
    ssl_verify_client optional;
    ssl_client_certificate test.crt;
    ssl_certificate test.crt;
    ssl_certificate_key test.key;
    resolver 127.0.0.1;
    smtp_capabilities PIPELINING "SIZE 50000000" ENHANCEDSTATUSCODES 8BITMIME DSN CHUNKING;
    imap_capabilities IMAP4rev1 SASL-IR ID ENABLE IDLE NAMESPACE LITERAL+;

    server {
        listen 127.0.0.1:20465 ssl;
        protocol smtp;
        xclient on;
        smtp_auth login plain;
        error_log smtps.log info;
        auth_http_header X-Auth-Port 465;
    }
    server {
        listen 127.0.0.1:20587;
        protocol smtp;
        starttls on;
        xclient on;
        smtp_auth login plain;
        auth_http_header X-Auth-Port 587;
    }
    server {
        listen 127.0.0.1:20143;
        protocol imap;
        starttls on;
        proxy_protocol on;
        imap_auth login plain;
        auth_http_header X-Auth-Port 143;
    }
    server {
        listen 127.0.0.1:20993 ssl;
        protocol imap;
        proxy_protocol on;
        imap_auth login plain;
        auth_http_header X-Auth-Port 993;
    }
}
""")
add("real_bluemind_like", H + """mail {
    include auth.conf;
    proxy on;
    starttls on;
    error_log mail.log info;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers HIGH:!aNULL:!MD5;
    ssl_session_cache shared:MAIL:16m;
    ssl_session_timeout 10m;
    ssl_certificate test.crt;
    ssl_certificate_key test.key;

    server {
        listen 127.0.0.1:20143;
        protocol imap;
    }
    server {
        listen 127.0.0.1:20110;
        protocol pop3;
    }
}
""", {"auth.conf": "auth_http 127.0.0.1:8090/nginx;\n"})
add("real_freebsd_mtls", H + """http {
    server {
        listen 127.0.0.1:20099;
        location /auth.php {
            return 200;
        }
    }
}
mail {
    auth_http 127.0.0.1:20099/auth.php;
    pop3_auth plain cram-md5;
    imap_auth plain login;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate test.crt;
    ssl_certificate_key test.key;
    server {
        listen 127.0.0.1:20110;
        protocol pop3;
        starttls on;
    }
    server {
        listen 127.0.0.1:20995 ssl;
        protocol pop3;
    }
    server {
        listen 127.0.0.1:20993 ssl;
        protocol imap;
        server_name imap.example.net;
        auth_http_pass_client_cert on;
        ssl_verify_client optional;
        ssl_client_certificate test.crt;
        ssl_trusted_certificate test.crt;
        ssl_verify_depth 2;
    }
}
""")
add("real_mx_shield", H + """mail {
    server_name mx.example.net;
    auth_http http://localhost:20080/auth;
    auth_http_header X-Secret s3cr3t;
    proxy_pass_error_message on;
    server {
        listen 127.0.0.1:20025;
        protocol smtp;
        starttls on;
        ssl_certificate test.crt;
        ssl_certificate_key test.key;
        smtp_auth login plain none;
        auth_http_header X-Secret other;
    }
}
""")
add("real_http_and_mail_debian", """user root;
worker_processes auto;
pid nginx.pid;

events {
    worker_connections 768;
}

http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    gzip on;
    map $http_upgrade $connection_upgrade {
        default upgrade;
        '' close;
    }
    upstream backend {
        server 127.0.0.1:20081;
    }
    server {
        listen 127.0.0.1:20080;
        server_name _;
        location / {
            proxy_pass http://backend;
            if ($request_method = POST) {
                return 405;
            }
        }
    }
}

mail {
    auth_http 127.0.0.1:20080/auth;
    server {
        listen 127.0.0.1:20143;
        protocol imap;
    }
}
""")
add("real_debian_default_plus_mail", 'user www-data;\nworker_processes auto;\npid nginx.pid;\nerror_log error.log;\nload_module /usr/lib/nginx/modules/ngx_mail_module.so;\nload_module /usr/lib/nginx/modules/ngx_stream_module.so;\n\nevents {\n\tworker_connections 768;\n\t# multi_accept on;\n}\n\nhttp {\n\n\t##\n\t# Basic Settings\n\t##\n\n\tsendfile on;\n\ttcp_nopush on;\n\ttypes_hash_max_size 2048;\n\t# server_tokens off;\n\n\t# server_names_hash_bucket_size 64;\n\t# server_name_in_redirect off;\n\n\tinclude /etc/nginx/mime.types;\n\tdefault_type application/octet-stream;\n\n\t##\n\t# SSL Settings\n\t##\n\n\tssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE\n\tssl_prefer_server_ciphers on;\n\n\t##\n\t# Logging Settings\n\t##\n\n\taccess_log /var/log/nginx/access.log;\n\n\t##\n\t# Gzip Settings\n\t##\n\n\tgzip on;\n\n\t# gzip_vary on;\n\t# gzip_proxied any;\n\t# gzip_comp_level 6;\n\t# gzip_buffers 16 8k;\n\t# gzip_http_version 1.1;\n\t# gzip_types text/plain text/css application/json application/javascript text/xml application/xml application/xml+rss text/javascript;\n\n\t##\n\t# Virtual Host Configs\n\t##\n\n\tinclude /etc/nginx/conf.d/*.conf;\n\tinclude /etc/nginx/sites-enabled/*;\n}\n\n\n#mail {\n#\t# See sample authentication script at:\n#\t# http://wiki.nginx.org/ImapAuthenticateWithApachePhpScript\n#\n#\t# auth_http localhost/auth.php;\n#\t# pop3_capabilities "TOP" "USER";\n#\t# imap_capabilities "IMAP4rev1" "UIDPLUS";\n#\n#\tserver {\n#\t\tlisten     localhost:110;\n#\t\tprotocol   pop3;\n#\t\tproxy      on;\n#\t}\n#\n#\tserver {\n#\t\tlisten     localhost:143;\n#\t\tprotocol   imap;\n#\t\tproxy      on;\n#\t}\n#}\n\nmail {\n\tserver_name mail.example.org;\n\tauth_http 127.0.0.1:20080/auth;\n\tserver {\n\t\tlisten 127.0.0.1:20143;\n\t\tprotocol imap;\n\t}\n}\n')
add("err_load_module_missing", "load_module modules/nosuch.so;\n" + one())
add("real_proxy_manager_snippet_bad", H + """mail {
    server_name mail.example.com;
    auth_http localhost:20080/auth;
    server {
        listen 127.0.0.1:20587;
        protocol smtp;
        proxy on;
        proxy_pass 127.0.0.1:587;
    }
}
""")

for name, (conf, files, args) in cases.items():
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "nginx.conf"), "w", newline="") as f:
        f.write(conf)
    for fn, content in files.items():
        p = os.path.join(d, fn)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(content)
    if args:
        with open(os.path.join(d, "args"), "w") as f:
            f.write("\n".join(args) + "\n")
print(len(cases))
