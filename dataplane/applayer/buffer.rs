//! What rules inspect of a transaction: a buffer is a kind (`http.uri`,
//! `dns.query`, `tls.sni` …) on one side. Every protocol's kinds are in
//! one enum so that one engine, one set of masks and one prefilter table
//! per buffer serve them all; `Kind::proto` says whose a kind is.

use super::{AppProto, Point};

/// What a buffer is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Uri,
    UriRaw,
    Method,
    RequestLine,
    Protocol,
    Host,
    HostRaw,
    UserAgent,
    Cookie,
    Header,
    HeaderRaw,
    HeaderNames,
    ContentType,
    ContentLen,
    Referer,
    Accept,
    AcceptEnc,
    AcceptLang,
    Connection,
    Start,
    RequestBody,
    ResponseBody,
    StatCode,
    StatMsg,
    ResponseLine,
    Location,
    Server,
    FileData,
    /// The names of the same files, an instance each.
    FileName,
    /// Each request header field as `Name: value` (an instance each).
    RequestHeader,
    ResponseHeader,
    /// The message as it came: head, then body (the payload content of a
    /// transaction rule; no keyword names it).
    Message,
    /// DNS: each question's name of a request (an instance each).
    DnsQuery,
    /// Every question's name (an instance each), either direction.
    DnsQueriesRrname,
    /// Every answer's name (an instance each).
    DnsAnswersRrname,
    /// Numbers (see `numeric`): the header's opcode and rcode, each
    /// question's type.
    DnsOpcode,
    DnsRcode,
    DnsRrtype,
    /// TLS, from the ClientHello: the server name, the offered ALPN
    /// protocols (an instance each), JA3 and JA4.
    TlsSni,
    TlsAlpn,
    Ja3Hash,
    Ja3String,
    Ja4Hash,
    /// From the server: JA3S, and its certificates (DER, an instance
    /// each) with the first one's subject, issuer, serial, SHA-1
    /// fingerprint and alternative names (an instance each).
    Ja3sHash,
    Ja3sString,
    TlsCerts,
    TlsCertSubject,
    TlsCertIssuer,
    TlsCertSerial,
    TlsCertFingerprint,
    TlsSubjectAltName,
    /// `tls.version`: the version a side's hello speaks for (a number;
    /// the server's, the one chosen, unless the rule says to_server).
    TlsVersion,
    /// HTTP again: the callables the pickles in a side's files import
    /// (a pickle, or a PyTorch zip's), `module.name` an instance each.
    PickleImports,
    /// An LLM-API request's JSON body (`applayer::llm`): every prompt
    /// string (a line each), the system prompt, tool-call arguments, the
    /// model asked for.
    LlmPrompt,
    LlmSystem,
    LlmToolArgs,
    LlmModel,
    /// The text of an LLM-API response (one JSON body, or a stream's
    /// deltas joined back).
    LlmCompletion,
    /// `pickle.suspicious`: a side's files import a callable outside the
    /// checkpoint-safe list and call something (a number: 1 when so).
    PickleSuspicious,
}

/// Which directions a kind exists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sides {
    Request,
    Response,
    Both,
}

impl Kind {
    pub const ALL: [Kind; 59] = [
        Kind::Uri,
        Kind::UriRaw,
        Kind::Method,
        Kind::RequestLine,
        Kind::Protocol,
        Kind::Host,
        Kind::HostRaw,
        Kind::UserAgent,
        Kind::Cookie,
        Kind::Header,
        Kind::HeaderRaw,
        Kind::HeaderNames,
        Kind::ContentType,
        Kind::ContentLen,
        Kind::Referer,
        Kind::Accept,
        Kind::AcceptEnc,
        Kind::AcceptLang,
        Kind::Connection,
        Kind::Start,
        Kind::RequestBody,
        Kind::ResponseBody,
        Kind::StatCode,
        Kind::StatMsg,
        Kind::ResponseLine,
        Kind::Location,
        Kind::Server,
        Kind::FileData,
        Kind::FileName,
        Kind::RequestHeader,
        Kind::ResponseHeader,
        Kind::Message,
        Kind::DnsQuery,
        Kind::DnsQueriesRrname,
        Kind::DnsAnswersRrname,
        Kind::DnsOpcode,
        Kind::DnsRcode,
        Kind::DnsRrtype,
        Kind::TlsSni,
        Kind::TlsAlpn,
        Kind::Ja3Hash,
        Kind::Ja3String,
        Kind::Ja4Hash,
        Kind::Ja3sHash,
        Kind::Ja3sString,
        Kind::TlsCerts,
        Kind::TlsCertSubject,
        Kind::TlsCertIssuer,
        Kind::TlsCertSerial,
        Kind::TlsCertFingerprint,
        Kind::TlsSubjectAltName,
        Kind::TlsVersion,
        Kind::PickleImports,
        Kind::LlmPrompt,
        Kind::LlmSystem,
        Kind::LlmToolArgs,
        Kind::LlmModel,
        Kind::LlmCompletion,
        Kind::PickleSuspicious,
    ];

    /// The protocol whose transactions have it.
    pub fn proto(self) -> AppProto {
        use Kind::*;
        match self {
            DnsQuery | DnsQueriesRrname | DnsAnswersRrname | DnsOpcode | DnsRcode | DnsRrtype => {
                AppProto::Dns
            }
            TlsSni | TlsAlpn | Ja3Hash | Ja3String | Ja4Hash | Ja3sHash | Ja3sString | TlsCerts
            | TlsCertSubject | TlsCertIssuer | TlsCertSerial | TlsCertFingerprint
            | TlsSubjectAltName | TlsVersion => AppProto::Tls,
            _ => AppProto::Http,
        }
    }

    /// A number, not bytes: each instance is a big-endian u64 and a rule
    /// compares it (`dns.opcode:!0`) rather than matching content.
    pub fn numeric(self) -> bool {
        matches!(
            self,
            Kind::DnsOpcode
                | Kind::DnsRcode
                | Kind::DnsRrtype
                | Kind::TlsVersion
                | Kind::PickleSuspicious
        )
    }

    /// A keyword that takes its comparison as a value (`dns.opcode:4`).
    pub fn of_numeric(k: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|x| x.numeric())
            .find(|x| x.keyword() == k)
    }

    /// A buffer of instances: a chain holds when it holds on one.
    pub fn multi(self) -> bool {
        matches!(
            self,
            Kind::RequestHeader
                | Kind::ResponseHeader
                | Kind::FileData
                | Kind::FileName
                | Kind::DnsQuery
                | Kind::DnsQueriesRrname
                | Kind::DnsAnswersRrname
                | Kind::DnsRrtype
                | Kind::TlsAlpn
                | Kind::TlsCerts
                | Kind::TlsSubjectAltName
                | Kind::PickleImports
        )
    }

    /// A kind about a side's files (`file.data`, `file.name`).
    pub fn of_files(self) -> bool {
        matches!(
            self,
            Kind::FileData | Kind::FileName | Kind::PickleImports | Kind::PickleSuspicious
        )
    }

    /// A kind a rule that does not say which side looks at on both, each
    /// on its own: files, and DNS messages (a request and a response are
    /// transactions of their own, as in Suricata).
    pub fn each_side(self) -> bool {
        self.of_files()
            || matches!(
                self,
                Kind::DnsQueriesRrname
                    | Kind::DnsAnswersRrname
                    | Kind::DnsOpcode
                    | Kind::DnsRcode
                    | Kind::DnsRrtype
            )
    }

    fn sides(self) -> Sides {
        match self {
            Kind::Uri
            | Kind::UriRaw
            | Kind::Method
            | Kind::RequestLine
            | Kind::Host
            | Kind::HostRaw
            | Kind::UserAgent
            | Kind::Referer
            | Kind::Accept
            | Kind::AcceptEnc
            | Kind::AcceptLang
            | Kind::RequestHeader
            | Kind::RequestBody
            | Kind::DnsQuery
            | Kind::TlsSni
            | Kind::TlsAlpn
            | Kind::Ja3Hash
            | Kind::Ja3String
            | Kind::Ja4Hash
            | Kind::LlmPrompt
            | Kind::LlmSystem
            | Kind::LlmToolArgs
            | Kind::LlmModel => Sides::Request,
            Kind::StatCode
            | Kind::StatMsg
            | Kind::ResponseLine
            | Kind::Location
            | Kind::Server
            | Kind::ResponseHeader
            | Kind::ResponseBody
            | Kind::Ja3sHash
            | Kind::Ja3sString
            | Kind::TlsCerts
            | Kind::TlsCertSubject
            | Kind::TlsCertIssuer
            | Kind::TlsCertSerial
            | Kind::TlsCertFingerprint
            | Kind::TlsSubjectAltName
            | Kind::LlmCompletion => Sides::Response,
            _ => Sides::Both,
        }
    }

    /// The sticky-buffer keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Kind::Uri => "http.uri",
            Kind::UriRaw => "http.uri.raw",
            Kind::Method => "http.method",
            Kind::RequestLine => "http.request_line",
            Kind::Protocol => "http.protocol",
            Kind::Host => "http.host",
            Kind::HostRaw => "http.host.raw",
            Kind::UserAgent => "http.user_agent",
            Kind::Cookie => "http.cookie",
            Kind::Header => "http.header",
            Kind::HeaderRaw => "http.header.raw",
            Kind::HeaderNames => "http.header_names",
            Kind::ContentType => "http.content_type",
            Kind::ContentLen => "http.content_len",
            Kind::Referer => "http.referer",
            Kind::Accept => "http.accept",
            Kind::AcceptEnc => "http.accept_enc",
            Kind::AcceptLang => "http.accept_lang",
            Kind::Connection => "http.connection",
            Kind::Start => "http.start",
            Kind::RequestBody => "http.request_body",
            Kind::ResponseBody => "http.response_body",
            Kind::StatCode => "http.stat_code",
            Kind::StatMsg => "http.stat_msg",
            Kind::ResponseLine => "http.response_line",
            Kind::Location => "http.location",
            Kind::Server => "http.server",
            Kind::FileData => "file.data",
            Kind::FileName => "file.name",
            Kind::RequestHeader => "http.request_header",
            Kind::ResponseHeader => "http.response_header",
            Kind::Message => "pkt_data",
            Kind::DnsQuery => "dns.query",
            Kind::DnsQueriesRrname => "dns.queries.rrname",
            Kind::DnsAnswersRrname => "dns.answers.rrname",
            Kind::DnsOpcode => "dns.opcode",
            Kind::DnsRcode => "dns.rcode",
            Kind::DnsRrtype => "dns.rrtype",
            Kind::TlsSni => "tls.sni",
            Kind::TlsAlpn => "tls.alpn",
            Kind::Ja3Hash => "ja3.hash",
            Kind::Ja3String => "ja3.string",
            Kind::Ja4Hash => "ja4.hash",
            Kind::Ja3sHash => "ja3s.hash",
            Kind::Ja3sString => "ja3s.string",
            Kind::TlsCerts => "tls.certs",
            Kind::TlsCertSubject => "tls.cert_subject",
            Kind::TlsCertIssuer => "tls.cert_issuer",
            Kind::TlsCertSerial => "tls.cert_serial",
            Kind::TlsCertFingerprint => "tls.cert_fingerprint",
            Kind::TlsSubjectAltName => "tls.subjectaltname",
            Kind::TlsVersion => "tls.version",
            Kind::PickleImports => "pickle.imports",
            Kind::LlmPrompt => "llm.prompt",
            Kind::LlmSystem => "llm.system",
            Kind::LlmToolArgs => "llm.tool_args",
            Kind::LlmModel => "llm.model",
            Kind::LlmCompletion => "llm.completion",
            Kind::PickleSuspicious => "pickle.suspicious",
        }
    }

    /// A sticky-buffer keyword (or its older name).
    pub fn of_sticky(k: &str) -> Option<Kind> {
        let old = match k {
            "file_data" => Some(Kind::FileData),
            "dns_query" => Some(Kind::DnsQuery),
            "tls_sni" => Some(Kind::TlsSni),
            "ja3_hash" => Some(Kind::Ja3Hash),
            "ja3_string" => Some(Kind::Ja3String),
            "ja3s_hash" => Some(Kind::Ja3sHash),
            "ja3s_string" => Some(Kind::Ja3sString),
            "tls_cert_subject" => Some(Kind::TlsCertSubject),
            "tls_cert_issuer" => Some(Kind::TlsCertIssuer),
            "tls_cert_serial" => Some(Kind::TlsCertSerial),
            "tls_cert_fingerprint" => Some(Kind::TlsCertFingerprint),
            _ => None,
        };
        old.or_else(|| {
            Kind::ALL
                .into_iter()
                .filter(|x| *x != Kind::Message && !x.numeric())
                .find(|x| x.keyword() == k)
        })
    }

    /// An older name of a sticky buffer (`http_request_line;`), as
    /// Suricata still takes them when no content comes before.
    pub fn of_sticky_alias(k: &str) -> Option<Kind> {
        Some(match k {
            "http_request_line" => Kind::RequestLine,
            "http_response_line" => Kind::ResponseLine,
            "http_protocol" => Kind::Protocol,
            "http_start" => Kind::Start,
            "http_header_names" => Kind::HeaderNames,
            "http_accept" => Kind::Accept,
            "http_accept_enc" => Kind::AcceptEnc,
            "http_accept_lang" => Kind::AcceptLang,
            "http_connection" => Kind::Connection,
            "http_content_len" => Kind::ContentLen,
            "http_content_type" => Kind::ContentType,
            "http_referer" => Kind::Referer,
            "http_server" => Kind::Server,
            "http_location" => Kind::Location,
            "http_request_header" => Kind::RequestHeader,
            "http_response_header" => Kind::ResponseHeader,
            _ => return None,
        })
    }

    /// A content modifier of the older syntax (`content:…; http_uri;`).
    pub fn of_modifier(k: &str) -> Option<Kind> {
        Some(match k {
            "http_uri" => Kind::Uri,
            "http_raw_uri" => Kind::UriRaw,
            "http_method" => Kind::Method,
            "http_client_body" => Kind::RequestBody,
            "http_server_body" => Kind::FileData,
            "http_header" => Kind::Header,
            "http_raw_header" => Kind::HeaderRaw,
            "http_cookie" => Kind::Cookie,
            "http_user_agent" => Kind::UserAgent,
            "http_host" => Kind::Host,
            "http_raw_host" => Kind::HostRaw,
            "http_stat_code" => Kind::StatCode,
            "http_stat_msg" => Kind::StatMsg,
            "http_content_type" => Kind::ContentType,
            "http_header_names" => Kind::HeaderNames,
            "http_accept" => Kind::Accept,
            "http_accept_enc" => Kind::AcceptEnc,
            "http_accept_lang" => Kind::AcceptLang,
            "http_referer" => Kind::Referer,
            "http_connection" => Kind::Connection,
            "http_content_len" => Kind::ContentLen,
            "http_protocol" => Kind::Protocol,
            "http_start" => Kind::Start,
            "http_request_line" => Kind::RequestLine,
            "http_response_line" => Kind::ResponseLine,
            _ => return None,
        })
    }

    /// A pcre buffer flag (`/…/U`).
    pub fn of_pcre_flag(c: char) -> Option<Kind> {
        Some(match c {
            'U' => Kind::Uri,
            'I' => Kind::UriRaw,
            'P' => Kind::RequestBody,
            'Q' => Kind::FileData,
            'H' => Kind::Header,
            'D' => Kind::HeaderRaw,
            'M' => Kind::Method,
            'C' => Kind::Cookie,
            'S' => Kind::StatCode,
            'Y' => Kind::StatMsg,
            'V' => Kind::UserAgent,
            'W' => Kind::Host,
            'Z' => Kind::HostRaw,
            _ => return None,
        })
    }
}

/// A buffer: a kind on one side of the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Buffer {
    pub kind: Kind,
    pub to_server: bool,
}

impl Buffer {
    /// The buffer of `kind` for a rule whose direction is `to_server`
    /// (None: unsaid). A kind on both sides follows the rule; unsaid, the
    /// request's, but file data is the response's (as `file_data` was).
    pub fn new(kind: Kind, to_server: Option<bool>) -> Buffer {
        let to_server = match kind.sides() {
            Sides::Request => true,
            Sides::Response => false,
            Sides::Both if kind.each_side() || kind == Kind::TlsVersion => {
                to_server.unwrap_or(false)
            }
            Sides::Both => to_server.unwrap_or(true),
        };
        Buffer { kind, to_server }
    }

    /// Its number among all buffers (for masks and tables).
    pub fn index(self) -> usize {
        self.kind as usize * 2 + usize::from(self.to_server)
    }

    pub const COUNT: usize = Kind::ALL.len() * 2;

    /// The point at which it is whole.
    pub fn point(self) -> Point {
        // Kinds read from a side's body (its files, its whole message).
        let of_body = self.kind.of_files() || self.kind == Kind::Message;
        match (self.kind, self.to_server) {
            (
                Kind::RequestBody
                | Kind::LlmPrompt
                | Kind::LlmSystem
                | Kind::LlmToolArgs
                | Kind::LlmModel,
                _,
            ) => Point::RequestBody,
            (Kind::ResponseBody | Kind::LlmCompletion, _) => Point::ResponseBody,
            (_, true) if of_body => Point::RequestBody,
            (_, false) if of_body => Point::ResponseBody,
            (_, true) => Point::RequestHeaders,
            (_, false) => Point::ResponseHeaders,
        }
    }

    /// Its name in reports (`http.header` or `http.header (response)`).
    pub fn name(self) -> String {
        match (self.kind.sides(), self.to_server) {
            (Sides::Both, false) => format!("{} (response)", self.kind.keyword()),
            _ => self.kind.keyword().to_string(),
        }
    }
}
