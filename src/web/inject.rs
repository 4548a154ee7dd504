//! Adds hotrun's browser-reload script to the HTML documents the proxy passes on.
//!
//! The tag goes in once, before `</head>` (else before `</body>`, else at the end unless
//! the page ends inside a comment or raw text, where a tag would be text), and only into
//! documents: a body with a `<!doctype`, `<html`, `<head` or `<body` marker.
//! Fragments (htmx and Turbo responses) and pages that already carry the tag pass
//! through byte for byte. Comments and the raw text of `<script>`, `<style>`,
//! `<textarea>` and `<title>` are skipped: a `</head>` inside an inline script is
//! no place for a tag. Bodies stream through [`Injector`], which holds back only the
//! few bytes that might be the start of a marker split across chunks.

/// Where the proxy serves the reload client.
const CLIENT_SRC: &str = "/__hotrun/client.js";
/// How every injected tag starts: a page that has it needs no other.
const TAG_START: &[u8] = b"<script src=\"/__hotrun/client.js\"";

/// What a pattern means when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `<!doctype`, `<html`, `<head`, `<body`: the body is a document.
    Marker,
    /// `</head` or `</body`: a place for the tag.
    Close,
    /// The page already carries hotrun's tag.
    Client,
    /// `<!--`: matches are ignored until `-->`.
    CommentOpen,
    /// `<script`, `<style`, `<textarea`, `<title`: raw text until this closing tag.
    RawOpen(&'static [u8]),
}

struct Pattern {
    text: &'static [u8],
    /// Bytes allowed right after `text`; empty when anything may follow.
    then: &'static [u8],
    kind: Kind,
}

const OPEN_END: &[u8] = b" \t\n\r\x0c>/";
const CLOSE_END: &[u8] = b" \t\n\r\x0c>";

const fn pat(text: &'static [u8], then: &'static [u8], kind: Kind) -> Pattern {
    Pattern { text, then, kind }
}

/// Looked for in this order, outside comments and raw text.
const PATTERNS: [Pattern; 12] = [
    pat(b"<!--", b"", Kind::CommentOpen),
    pat(b"<!doctype", b"", Kind::Marker),
    pat(b"<html", OPEN_END, Kind::Marker),
    pat(b"<head", OPEN_END, Kind::Marker),
    pat(b"<body", OPEN_END, Kind::Marker),
    pat(b"</head", CLOSE_END, Kind::Close),
    pat(b"</body", CLOSE_END, Kind::Close),
    pat(TAG_START, b"", Kind::Client),
    pat(b"<script", OPEN_END, Kind::RawOpen(b"</script")),
    pat(b"<style", OPEN_END, Kind::RawOpen(b"</style")),
    pat(b"<textarea", OPEN_END, Kind::RawOpen(b"</textarea")),
    pat(b"<title", OPEN_END, Kind::RawOpen(b"</title")),
];

/// How a pattern relates to the bytes at one position.
#[derive(PartialEq, Eq)]
enum Match {
    No,
    /// The bytes so far agree with the pattern but end too soon to tell.
    Partial,
    /// Matched; the pattern is this many bytes long.
    Full(usize),
}

fn match_at(s: &[u8], p: &Pattern, eof: bool) -> Match {
    let n = p.text.len().min(s.len());
    if !s[..n].eq_ignore_ascii_case(&p.text[..n]) {
        return Match::No;
    }
    let more = if eof { Match::No } else { Match::Partial };
    if s.len() < p.text.len() {
        return more;
    }
    if p.then.is_empty() {
        return Match::Full(n);
    }
    match s.get(n) {
        None => more,
        Some(c) if p.then.contains(c) => Match::Full(n),
        Some(_) => Match::No,
    }
}

/// What the scanner does at one position.
enum Step {
    /// Move on by this many bytes.
    Skip(usize),
    /// Wait for more bytes before deciding.
    Hold,
    /// Put the tag here.
    Inject,
    /// Nothing more to do: the page already loads the client.
    Stop,
}

/// Streams a response body through, adding `tag` once where it belongs.
#[derive(Debug)]
pub struct Injector {
    tag: Vec<u8>,
    /// Bytes held back from the last push: a possible marker cut by the chunk boundary.
    held: Vec<u8>,
    seen_marker: bool,
    /// Inside a comment or raw text: only this ends it.
    until: Option<&'static [u8]>,
    /// The tag went in, or never will; the rest passes straight through.
    done: bool,
    injected: bool,
}

impl Injector {
    pub fn new(tag: impl Into<Vec<u8>>) -> Injector {
        Injector {
            tag: tag.into(),
            held: Vec::new(),
            seen_marker: false,
            until: None,
            done: false,
            injected: false,
        }
    }

    /// For the answer to a navigation: a document even without a `<html>`, `<head>`,
    /// `<body>` or doctype (`Html("<h1>Hello</h1>")`), so the tag goes in at the end.
    pub fn document(mut self) -> Injector {
        self.seen_marker = true;
        self
    }

    /// Feed the next chunk; returns the bytes that can be sent on now (possibly empty).
    /// Holds back at most a few bytes (a possible split marker) — never the whole body.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        self.scan(buf, false)
    }

    /// The body ended: returns what was held back, plus the tag at the end when the
    /// body is a document that had neither `</head>` nor `</body>` and does not end
    /// inside a comment or raw text.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        let mut out = self.scan(held, true);
        if !self.done && self.seen_marker && self.until.is_none() {
            out.extend_from_slice(&self.tag);
            self.injected = true;
        }
        self.done = true;
        out
    }

    /// Whether the tag went in (after `finish`, the final answer).
    pub fn injected(&self) -> bool {
        self.injected
    }

    /// Goes through `buf`, returning what can be sent and keeping a possible split
    /// marker in `self.held`. At `eof` nothing is held.
    fn scan(&mut self, mut buf: Vec<u8>, eof: bool) -> Vec<u8> {
        let mut i = 0;
        while !self.done && i < buf.len() {
            match self.step(&buf[i..], eof) {
                Step::Skip(n) => i += n,
                Step::Hold => {
                    self.held = buf.split_off(i);
                    break;
                }
                Step::Inject => {
                    buf.splice(i..i, self.tag.iter().copied());
                    self.injected = true;
                    self.done = true;
                }
                Step::Stop => self.done = true,
            }
        }
        buf
    }

    fn step(&mut self, s: &[u8], eof: bool) -> Step {
        if let Some(end) = self.until {
            if s[0] != end[0] {
                return Step::Skip(1);
            }
            return match match_at(s, &pat(end, b"", Kind::Close), eof) {
                Match::No => Step::Skip(1),
                Match::Partial => Step::Hold,
                Match::Full(len) => {
                    self.until = None;
                    Step::Skip(len)
                }
            };
        }
        // Every pattern starts with `<`; most bytes are skipped at once.
        if s[0] != b'<' {
            return Step::Skip(1);
        }
        for p in &PATTERNS {
            let len = match match_at(s, p, eof) {
                Match::No => continue,
                Match::Partial => return Step::Hold,
                Match::Full(len) => len,
            };
            match p.kind {
                Kind::CommentOpen => {
                    // Past `<!` only, so `<!-->` and `<!--->` close at once, as in browsers.
                    self.until = Some(b"-->");
                    return Step::Skip(2);
                }
                Kind::RawOpen(end) => self.until = Some(end),
                Kind::Marker => self.seen_marker = true,
                Kind::Close if self.seen_marker => return Step::Inject,
                Kind::Close => {}
                Kind::Client => return Step::Stop,
            }
            return Step::Skip(len);
        }
        Step::Skip(1)
    }
}

/// Inject into a whole body at once (for bodies with a known length). Returns None when
/// nothing went in: the body is not a document, or it already carries hotrun's tag
/// (either way, leave it untouched).
pub fn inject_all(tag: &[u8], body: &[u8], document: bool) -> Option<Vec<u8>> {
    let mut injector = Injector::new(tag);
    if document {
        injector = injector.document();
    }
    let mut out = injector.push(body);
    out.extend(injector.finish());
    injector.injected().then_some(out)
}

/// Whether a response with this `Content-Type` header value should go through the
/// injector: `text/html` (any params, any case).
pub fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("");
    essence.trim().eq_ignore_ascii_case("text/html")
}

/// A `nonce` for the script tag from a `Content-Security-Policy` header value: the first
/// `'nonce-XYZ'` source in `script-src` (else `default-src`); None if none.
///
/// As in browsers, `default-src` counts only when the policy has no `script-src`.
pub fn csp_nonce(csp: &str) -> Option<String> {
    let directive = |name: &str| {
        csp.split([';', ','])
            .map(|d| d.split_ascii_whitespace())
            .find_map(|mut words| {
                let found = words.next()?.eq_ignore_ascii_case(name);
                found.then_some(words)
            })
    };
    let sources = directive("script-src").or_else(|| directive("default-src"))?;
    sources.into_iter().find_map(|source| {
        let b = source.as_bytes();
        let quoted = b.len() > 8 && b.ends_with(b"'");
        let nonce = quoted && b[..7].eq_ignore_ascii_case(b"'nonce-");
        nonce.then(|| source[7..source.len() - 1].to_string())
    })
}

/// The tag to inject, with `nonce="..."` when given (nonce validated to base64/url-safe
/// chars only; otherwise ignored), and the id of the app that served the page, so a tab
/// that connects after a newer app went live knows it is stale.
pub fn script_tag(nonce: Option<&str>, build_id: &str) -> Vec<u8> {
    let safe = |n: &&str| {
        !n.is_empty()
            && n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_'))
    };
    let nonce = match nonce.filter(safe) {
        Some(n) => format!(" nonce=\"{n}\""),
        None => String::new(),
    };
    let id: String = build_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("<script src=\"{CLIENT_SRC}\"{nonce} data-hotrun=\"{id}\"></script>").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "<script src=\"/__hotrun/client.js\" data-hotrun=\"1-2\"></script>";

    fn all(body: &str) -> Option<String> {
        inject_all(TAG.as_bytes(), body.as_bytes(), false).map(|b| String::from_utf8(b).unwrap())
    }

    /// Streams `chunks` through an injector: the output and whether the tag went in.
    fn stream<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, bool) {
        let mut injector = Injector::new(TAG);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(injector.push(chunk));
        }
        out.extend(injector.finish());
        (out, injector.injected())
    }

    /// What the proxy sends for a whole body: the injected body, or the body untouched.
    fn expected(body: &[u8]) -> Vec<u8> {
        inject_all(TAG.as_bytes(), body, false).unwrap_or_else(|| body.to_vec())
    }

    const SAMPLES: &[&str] = &[
        "<!DOCTYPE html>\n<html lang=\"fr\"><head><title>Café ☕ 日本</title></head>\n<body><p>é</p></body></html>",
        "<html><body><header>x</header><!-- </body> --><p>ü</p></BODY\n></html>",
        "<div>hi</div><header>ö</header></body>",
        "<!doctype html><p>no closing tags, ✓</p>",
        "<html><head><script src=\"/__hotrun/client.js\"></script></head></html>",
        "<!-- <html> --><div>fragment</div></head>",
    ];

    #[test]
    fn document_with_head() {
        let out = all("<!doctype html><html><head><title>t</title></head><body>b</body></html>");
        let want =
            format!("<!doctype html><html><head><title>t</title>{TAG}</head><body>b</body></html>");
        assert_eq!(out, Some(want));
    }

    #[test]
    fn document_with_body_only() {
        let out = all("<body><p>x</p></body>");
        assert_eq!(out, Some(format!("<body><p>x</p>{TAG}</body>")));
    }

    #[test]
    fn document_without_closing_tags_gets_tag_at_end() {
        let out = all("<!DOCTYPE html><p>x");
        assert_eq!(out, Some(format!("<!DOCTYPE html><p>x{TAG}")));
    }

    #[test]
    fn a_navigation_answer_is_a_document_without_tags() {
        let tag = TAG.as_bytes();
        let page = inject_all(tag, b"<h1>Hello</h1>", true).unwrap();
        assert_eq!(page, format!("<h1>Hello</h1>{TAG}").into_bytes());
        // Streamed too, and still before `</body>` when there is one.
        let mut injector = Injector::new(tag).document();
        let mut out = injector.push(b"<p>x</bo");
        out.extend(injector.push(b"dy>"));
        out.extend(injector.finish());
        assert_eq!(out, format!("<p>x{TAG}</body>").into_bytes());
        // Not twice.
        assert_eq!(inject_all(tag, &page, true), None);
        // Without the request saying so, a fragment stays one.
        assert_eq!(inject_all(tag, b"<h1>Hello</h1>", false), None);
    }

    #[test]
    fn no_tag_at_the_end_inside_a_comment_or_raw_text() {
        // A page cut short inside a style, script, title or comment: a tag there would be
        // text, and each pass through hotrun would add one more.
        for page in [
            "<!doctype html><style>",
            "<!doctype html><script>let a = 1;",
            "<html><title>t",
            "<html><!-- x",
        ] {
            assert_eq!(all(page), None, "{page}");
        }
        let out = all("<!doctype html><style></style>");
        assert_eq!(out, Some(format!("<!doctype html><style></style>{TAG}")));
    }

    #[test]
    fn fragment_passes_through_unchanged() {
        assert_eq!(all("<div>hi</div>"), None);
        let (out, injected) = stream([b"<div>hi</div>".as_slice()]);
        assert_eq!(out, b"<div>hi</div>");
        assert!(!injected);
        // A stray closing tag without any document marker is still a fragment.
        assert_eq!(all("<div>hi</div></body>"), None);
    }

    #[test]
    fn header_is_not_head() {
        assert_eq!(all("<header><h1>x</h1></header>"), None);
        assert_eq!(all("<bodyguard><htmlx></header></head>"), None);
        let out = all("<html><header>x</header></headx></head >");
        assert_eq!(
            out,
            Some(format!("<html><header>x</header></headx>{TAG}</head >"))
        );
    }

    #[test]
    fn uppercase_closing_head() {
        let out = all("<HTML><HEAD><TITLE>t</TITLE></HEAD><BODY></BODY></HTML>");
        let want = format!("<HTML><HEAD><TITLE>t</TITLE>{TAG}</HEAD><BODY></BODY></HTML>");
        assert_eq!(out, Some(want));
    }

    #[test]
    fn markers_in_comments_are_ignored() {
        assert_eq!(all("<!-- <html> --><div>x</div></body>"), None);
        assert_eq!(all("<!--><!---><div>x</div></body>"), None);
        let out = all("<!--><html><body></body>");
        assert_eq!(out, Some(format!("<!--><html><body>{TAG}</body>")));
        let out = all("<html><head><!-- </head> --></head>");
        assert_eq!(
            out,
            Some(format!("<html><head><!-- </head> -->{TAG}</head>"))
        );
    }

    #[test]
    fn never_injected_twice() {
        let page = "<html><head><script src=\"/__hotrun/client.js\"></script></head></html>";
        assert_eq!(all(page), None);
        // A tag for hotrun's own port (without the proxy) is no reason to leave it out.
        let page = "<html><head><script src=\"http://127.0.0.1:35729/__hotrun/client.js\"></script></head>";
        assert!(all(page).is_some());
        let once = all("<html><head></head><body></body></html>").unwrap();
        assert_eq!(all(&once), None);
        assert_eq!(once.matches("__hotrun/client.js").count(), 1);
    }

    #[test]
    fn every_two_chunk_split_matches_inject_all() {
        for sample in SAMPLES {
            let body = sample.as_bytes();
            for at in 0..=body.len() {
                let (a, b) = body.split_at(at);
                let (out, _) = stream([a, b]);
                assert_eq!(out, expected(body), "{sample:?} split at {at}");
            }
        }
    }

    #[test]
    fn single_byte_chunks_match_inject_all() {
        for sample in SAMPLES {
            let body = sample.as_bytes();
            let (out, injected) = stream(body.chunks(1));
            assert_eq!(out, expected(body), "{sample:?}");
            assert_eq!(injected, inject_all(TAG.as_bytes(), body, false).is_some());
        }
    }

    #[test]
    fn holds_back_only_a_short_tail() {
        let mut injector = Injector::new(TAG);
        let body = "<html><body>".to_string() + &"x".repeat(10_000) + "</bo";
        let out = injector.push(body.as_bytes());
        assert_eq!(out.len(), body.len() - "</bo".len());
        let out = injector.push(b"dy>");
        assert_eq!(out, format!("{TAG}</body>").into_bytes());
        assert!(injector.injected());
        assert_eq!(injector.push(b"</html>"), b"</html>");
        assert!(injector.finish().is_empty());
    }

    #[test]
    fn empty_body() {
        assert_eq!(all(""), None);
        let (out, injected) = stream([]);
        assert!(out.is_empty());
        assert!(!injected);
        let (out, _) = stream([b"".as_slice(), b""]);
        assert!(out.is_empty());
    }

    #[test]
    fn html_content_types() {
        assert!(is_html("text/html"));
        assert!(is_html("Text/HTML; charset=utf-8"));
        assert!(is_html(" text/html ;charset=\"x\""));
        assert!(!is_html("text/htmlx"));
        assert!(!is_html("application/json"));
        assert!(!is_html(""));
    }

    #[test]
    fn nonce_from_script_src() {
        let csp = "default-src 'self'; script-src 'self' 'nonce-abc123'";
        assert_eq!(csp_nonce(csp).as_deref(), Some("abc123"));
    }

    #[test]
    fn no_nonce_in_policy() {
        assert_eq!(
            csp_nonce("default-src 'self'; script-src 'self' https:"),
            None
        );
        assert_eq!(csp_nonce(""), None);
        assert_eq!(csp_nonce("script-src 'nonce-'"), None);
        // `default-src` does not apply when `script-src` is there.
        assert_eq!(csp_nonce("default-src 'nonce-a'; script-src 'self'"), None);
    }

    #[test]
    fn nonce_from_default_src_only() {
        let csp = "img-src *; DEFAULT-SRC 'self' 'NONCE-R4nd/+=' 'nonce-second'";
        assert_eq!(csp_nonce(csp).as_deref(), Some("R4nd/+="));
    }

    #[test]
    fn script_tags() {
        assert_eq!(script_tag(None, "1-2"), TAG.as_bytes());
        let with =
            "<script src=\"/__hotrun/client.js\" nonce=\"a-b_c+/=\" data-hotrun=\"1-2\"></script>";
        assert_eq!(script_tag(Some("a-b_c+/="), "1-2"), with.as_bytes());
        assert_eq!(script_tag(Some("\"><script>"), "1-2"), TAG.as_bytes());
        assert_eq!(script_tag(Some(""), "1-\"2"), TAG.as_bytes());
    }

    #[test]
    fn raw_text_is_no_place_for_the_tag() {
        let page = "<html><head><script>document.write('<html><head></head>')</script></head>";
        assert_eq!(
            all(page),
            Some(format!(
                "<html><head><script>document.write('<html><head></head>')</script>{TAG}</head>"
            ))
        );
        let page = "<html><head><style>/* </head> */</style><TITLE></head></Title></head>";
        assert_eq!(
            all(page),
            Some(format!(
                "<html><head><style>/* </head> */</style><TITLE></head></Title>{TAG}</head>"
            ))
        );
        // A fragment that only mentions a document inside a script stays a fragment.
        assert_eq!(
            all("<div><script>x = '<html><body></body>'</script></div>"),
            None
        );
        // `<scripts>` is no script.
        assert_eq!(
            all("<html><scripts></head>"),
            Some(format!("<html><scripts>{TAG}</head>"))
        );
    }
}
