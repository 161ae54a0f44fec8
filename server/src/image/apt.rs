//! The Debian mirror this host already uses, read from its apt sources, so that the
//! base image is made from the same (possibly local or proxied) mirror.

use std::path::{Path, PathBuf};

/// Used when the host's apt sources name no Debian mirror.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// Suites that only a Debian archive carries; a source serving one of them is a
/// Debian mirror, so it also carries the suite the base is made from. Security and
/// update suites (`bookworm-security`) live in other archives and do not count.
const DEBIAN_SUITES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "sid",
    "oldoldstable",
    "oldstable",
    "stable",
    "testing",
    "unstable",
];

/// The host's Debian mirror, or [`DEFAULT_MIRROR`]. Unreadable files are skipped.
pub fn host_mirror(suite: &str) -> String {
    let etc = Path::new("/etc/apt");
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut read = |path: PathBuf| {
        if let Ok(text) = std::fs::read_to_string(&path) {
            files.push((path, text));
        }
    };
    read(etc.join("sources.list"));
    if let Ok(dir) = std::fs::read_dir(etc.join("sources.list.d")) {
        let mut paths: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            // apt reads only these two extensions (`x.list.disabled` is off).
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("list" | "sources")
            ) {
                read(path);
            }
        }
    }
    mirror_from_sources(&files, suite).unwrap_or_else(|| DEFAULT_MIRROR.to_string())
}

/// One `deb` source: where and which suites.
#[derive(Debug, PartialEq)]
struct Source {
    uri: String,
    suites: Vec<String>,
}

/// The mirror to use: the first source carrying `suite` itself, else the first
/// carrying any Debian suite. `files` are (path, text); the extension says the format.
fn mirror_from_sources(files: &[(PathBuf, String)], suite: &str) -> Option<String> {
    let sources: Vec<Source> = files
        .iter()
        .flat_map(|(path, text)| {
            if path.extension().is_some_and(|e| e == "sources") {
                parse_deb822(text)
            } else {
                parse_one_line(text)
            }
        })
        .filter(|s| usable_uri(&s.uri))
        .collect();
    let carries = |s: &Source, wanted: &dyn Fn(&str) -> bool| s.suites.iter().any(|x| wanted(x));
    sources
        .iter()
        .find(|s| carries(s, &|x| x == suite))
        .or_else(|| {
            sources
                .iter()
                .find(|s| carries(s, &|x| DEBIAN_SUITES.contains(&x)))
        })
        .map(|s| s.uri.trim_end_matches('/').to_string())
}

/// mmdebstrap fetches with apt on the host: http(s) and local files work; `cdrom:`
/// and `mirror+file:` lists do not make sense for a base image.
fn usable_uri(uri: &str) -> bool {
    ["http://", "https://", "file:/"]
        .iter()
        .any(|scheme| uri.starts_with(scheme))
}

/// `deb [options] URI SUITE COMPONENT...` lines; `deb-src` and comments are skipped.
fn parse_one_line(text: &str) -> Vec<Source> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("").trim();
            let rest = line.strip_prefix("deb")?;
            if !rest.starts_with([' ', '\t']) {
                return None; // deb-src, or not a source line
            }
            let rest = rest.trim_start();
            // Options in brackets may contain spaces: `[ arch=amd64 signed-by=... ]`.
            let rest = match rest.strip_prefix('[') {
                Some(opts) => opts.split_once(']')?.1,
                None => rest,
            };
            let mut words = rest.split_whitespace();
            let uri = words.next()?.to_string();
            let suite = words.next()?.to_string();
            Some(Source {
                uri,
                suites: vec![suite],
            })
        })
        .collect()
}

/// deb822 stanzas: `Types:`, `URIs:`, `Suites:`, separated by blank lines.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut types = Vec::new();
        let mut uris = Vec::new();
        let mut suites = Vec::new();
        let mut enabled = true;
        for line in stanza.lines() {
            if line.starts_with('#') || line.starts_with([' ', '\t']) {
                continue; // comments and continuation lines (e.g. an inline key)
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let words = || {
                value
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "types" => types = words(),
                "uris" => uris = words(),
                "suites" => suites = words(),
                "enabled" => enabled = !value.trim().eq_ignore_ascii_case("no"),
                _ => {}
            }
        }
        if enabled && types.iter().any(|t| t == "deb") {
            out.extend(uris.into_iter().map(|uri| Source {
                uri,
                suites: suites.clone(),
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(files: &[(&str, &str)]) -> Option<String> {
        let files: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        mirror_from_sources(&files, "bookworm")
    }

    /// This machine's file, as shipped.
    const DEBIAN_SOURCES: &str = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn mirrors_from_apt_sources() {
        // (files as (path, text), the mirror expected)
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            (
                &[("debian.sources", DEBIAN_SOURCES)],
                Some("http://deb.debian.org/debian"),
            ),
            // One-line format, options in brackets, trailing slash, comments.
            (
                &[(
                    "sources.list",
                    "# deb http://old.example/debian bookworm main\n\
                     deb-src http://src.example/debian bookworm main\n\
                     deb [ arch=amd64 signed-by=/k.gpg ] http://mirror.example/debian/ bookworm main\n",
                )],
                Some("http://mirror.example/debian"),
            ),
            // The suite itself wins over an earlier source of another Debian suite.
            (
                &[
                    ("a.list", "deb http://trixie.example/debian trixie main\n"),
                    ("b.list", "deb http://proxy:3142/debian bookworm main\n"),
                ],
                Some("http://proxy:3142/debian"),
            ),
            // Another Debian suite still names a Debian mirror.
            (
                &[("a.list", "deb https://trixie.example/debian trixie main\n")],
                Some("https://trixie.example/debian"),
            ),
            // Third-party archives and security-only sources are not Debian mirrors.
            (
                &[
                    ("n.sources", "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n"),
                    ("s.list", "deb http://security.debian.org/debian-security bookworm-security main\n"),
                ],
                None,
            ),
            // Disabled stanzas, deb-src stanzas and cdrom sources are skipped.
            (
                &[(
                    "x.sources",
                    "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n\
                     Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n\
                     Types: deb\nURIs: cdrom:[Debian]/\nSuites: bookworm\n",
                )],
                None,
            ),
            // An inline key (continuation lines) does not confuse the parser.
            (
                &[(
                    "k.sources",
                    "Types: deb\nURIs: http://k.example/debian\nSuites: bookworm\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n Suites: nope\n",
                )],
                Some("http://k.example/debian"),
            ),
            (&[], None),
        ];
        for (files, want) in cases {
            assert_eq!(mirror(files).as_deref(), *want, "{files:?}");
        }
    }
}
