//! Property tests across folders: any file name (bytes, UTF-8 or not) goes through
//! every printer and the browser hub.

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::proptests::cases;

// File names are bytes: any but NUL and `/`, UTF-8 or not.
fn file_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(
            any::<u8>().prop_filter("no NUL or /", |b| *b != 0 && *b != b'/'),
            1..40
        )
        .prop_filter("a name, not . or ..", |n| n != b"." && n != b".."),
        // Latin-1 names, as old archives and Windows shares hand them over.
        "[a-z]{1,8}".prop_map(|s| {
            let mut b = s.into_bytes();
            b.extend([0xe9, b'.', b'c', b's', b's']);
            b
        }),
    ]
}

fn printers() -> Vec<crate::ui::Printer> {
    use crate::config::cli::{ColorChoice, UiMode};
    use crate::config::settings::{Ui, UiSettings};
    let mut printers = Vec::new();
    for mode in [Ui::Json, Ui::Plain] {
        for color in [false, true] {
            let settings = UiSettings {
                mode,
                requested_mode: UiMode::Auto,
                color,
                requested_color: ColorChoice::Auto,
                clear_on_rebuild: false,
                verbose: true,
            };
            let info = crate::ui::panel::PanelInfo {
                urls: Vec::new(),
                root: "/w/site".into(),
            };
            printers.push(crate::ui::Printer::new(settings, "/w/site".into(), info).unwrap());
        }
    }
    printers
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn any_file_name_goes_through_every_printer_and_the_browser(
        names in vec(file_name(), 1..5),
        inside in any::<bool>(),
    ) {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        use crate::core::event::{Browser, ChangeKind, Report};
        let base = if inside { "/w/site/static" } else { "/elsewhere" };
        let paths: Vec<std::path::PathBuf> = names
            .iter()
            .map(|n| Path::new(base).join(std::ffi::OsString::from_vec(n.clone())))
            .collect();
        let reports = [
            Report::Watching { roots: paths.clone(), directories: 3, polling: None },
            Report::Change { paths: paths.clone(), count: paths.len(), kind: ChangeKind::Css },
            Report::BuildStarted { files: paths.clone() },
            Report::Error { message: format!("cannot read {}", paths[0].display()) },
        ];
        for printer in printers() {
            for report in &reports {
                if let Some(json) = printer.json(report) {
                    let text = json.to_string();
                    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
                    for field in ["roots", "paths", "files"] {
                        let Some(list) = back[field].as_array() else { continue };
                        prop_assert_eq!(list.len(), paths.len());
                        let raw = back[format!("{field}_base64")].as_array();
                        let lossless = paths.iter().all(|p| p.to_str().is_some());
                        prop_assert_eq!(raw.is_none(), lossless, "{}", text);
                        for (i, path) in paths.iter().enumerate() {
                            prop_assert_eq!(list[i].as_str().unwrap(), path.to_string_lossy());
                            if let Some(raw) = raw {
                                let bytes = data_encoding::BASE64
                                    .decode(raw[i].as_str().unwrap().as_bytes())
                                    .unwrap();
                                prop_assert_eq!(&bytes[..], path.as_os_str().as_bytes());
                            }
                        }
                    }
                }
                let _ = printer.plain(report);
            }
        }
        let hub = crate::web::hub::Hub::new(Path::new("/w/site"));
        let (_hello, mut messages) = hub.join().unwrap();
        for message in [
            Browser::Building { files: paths.clone() },
            Browser::Css { path: paths[0].clone() },
            Browser::Reload { path: paths[0].clone() },
        ] {
            hub.send(&message);
            let wire = messages.try_recv().unwrap();
            let wire: serde_json::Value = serde_json::from_str(&wire).unwrap();
            let first = wire.get("path").or_else(|| wire["files"].get(0)).unwrap();
            let name = String::from_utf8_lossy(&names[0]).into_owned();
            prop_assert!(first.as_str().unwrap().ends_with(&name), "{}", wire);
        }
    }
}
