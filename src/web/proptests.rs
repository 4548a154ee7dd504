//! Property tests of the pages the reload tag goes into: `Injector`, `inject_all`,
//! `script_tag`, streamed in any chunks.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use crate::proptests::cases;
use crate::web::inject::{inject_all, script_tag, Injector};

// ---------------------------------------------------------------------------------
// Pages the reload tag goes into: `Injector`, `inject_all`, `script_tag`.

/// Pieces of pages: markers, places for the tag, raw text and comments that hide them,
/// near misses, pieces cut short, the tag itself, and text.
const HTML_PIECES: &[&str] = &[
    "<!doctype html>",
    "<!DOCTYPE html>",
    "<html>",
    "<html lang=\"en\">",
    "<HTML>",
    "</html>",
    "<head>",
    "<head >",
    "</head>",
    "</HEAD>",
    "</head\n>",
    "</head >",
    "<body>",
    "<body class=x>",
    "</body>",
    "</BODY >",
    "<header>",
    "</header>",
    "<headx>",
    "</headx>",
    "<bodyguard>",
    "<script>",
    "</script>",
    "<script type=module>",
    "<scripts>",
    "</script >",
    "<style>",
    "</style>",
    "<textarea>",
    "</textarea>",
    "<title>",
    "</TITLE>",
    "<!--",
    "-->",
    "<!-->",
    "<!--->",
    "--",
    "<!",
    "<",
    ">",
    "/",
    "</",
    "</he",
    "</bo",
    "<!doc",
    "<scr",
    "<script src=\"/__hotrun/client.js\"></script>",
    "<script src=\"/__hotrun/client.js\"",
    "<SCRIPT SRC=\"/__hotrun/client.js\" data-hotrun=\"old\">",
    "<p>",
    "</p>",
    "a < b",
    "&lt;",
    "x",
    " ",
    "\n",
    "é",
    "日本",
    "☕",
    "🦀",
];

fn html_page() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => select(HTML_PIECES).prop_map(|p| p.as_bytes().to_vec()),
        1 => "[ -~]{0,6}".prop_map(String::into_bytes),
        1 => "\\PC{0,3}".prop_map(String::into_bytes),
        // Not always UTF-8.
        1 => vec(any::<u8>(), 0..4),
    ];
    vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// The tag for any nonce and app id, as the proxy makes it.
fn reload_tag() -> impl Strategy<Value = Vec<u8>> {
    (prop::option::of("[A-Za-z0-9+/=_\"<> -]{0,8}"), "\\PC{0,8}")
        .prop_map(|(nonce, id)| script_tag(nonce.as_deref(), &id))
}

/// `body` cut at `cuts` (empty chunks included).
fn chunks<'a>(body: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for end in at.into_iter().chain([body.len()]) {
        out.push(&body[start..end]);
        start = end;
    }
    out
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// The longest the injector holds back: a marker or the tag's start, cut by a chunk.
const MAX_HELD: usize = "<script src=\"/__hotrun/client.js\"".len();

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn streamed_pages_get_the_tag_once(
        body in html_page(),
        cuts in vec(any::<Index>(), 0..6),
        tag in reload_tag(),
    ) {
        let whole = inject_all(&tag, &body, false);
        let mut injector = Injector::new(tag.clone());
        let (mut out, mut fed) = (Vec::new(), 0);
        for chunk in chunks(&body, &cuts) {
            out.extend(injector.push(chunk));
            fed += chunk.len();
            // Only a few bytes are ever held back.
            let tag_len = if injector.injected() { tag.len() } else { 0 };
            prop_assert!(out.len() - tag_len + MAX_HELD >= fed);
        }
        out.extend(injector.finish());
        // Streamed in any chunks, the page is what it is whole.
        prop_assert_eq!(&out, whole.as_ref().unwrap_or(&body));
        prop_assert_eq!(injector.injected(), whole.is_some());
        if let Some(out) = whole {
            // One tag more, and taking it out gives the page back byte for byte.
            prop_assert_eq!(count(&out, &tag), count(&body, &tag) + 1);
            let back = (0..=out.len() - tag.len()).any(|at| {
                out[at..].starts_with(&tag)
                    && out[..at].iter().chain(&out[at + tag.len()..]).eq(body.iter())
            });
            prop_assert!(back, "the tag is not one insertion");
        }
        // Without a document marker anywhere, a body is a fragment.
        let lower = body.to_ascii_lowercase();
        let marker = [&b"<!doctype"[..], b"<html", b"<head", b"<body"]
            .iter()
            .any(|m| count(&lower, m) > 0);
        if !marker {
            prop_assert_eq!(out, body);
        }
    }

    #[test]
    fn pages_with_the_tag_get_no_other(body in html_page(), tag in reload_tag()) {
        // Once is enough: a page that went through once passes unchanged.
        if let Some(once) = inject_all(&tag, &body, false) {
            prop_assert_eq!(inject_all(&tag, &once, false), None);
        }
    }

    #[test]
    fn reload_tags_stay_one_tag(
        nonce in prop::option::of("\\PC{0,12}"),
        id in "\\PC{0,12}",
    ) {
        // Nothing in a nonce or an id gets out of its attribute.
        let tag = String::from_utf8(script_tag(nonce.as_deref(), &id)).unwrap();
        prop_assert!(tag.starts_with("<script src=\"/__hotrun/client.js\""));
        prop_assert!(tag.ends_with("\"></script>"));
        prop_assert_eq!(tag.matches('<').count(), 2);
        prop_assert_eq!(tag.matches('>').count(), 2);
        prop_assert!([4, 6].contains(&tag.matches('"').count()));
    }
}
