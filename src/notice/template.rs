//! Notice templates: per language (`en`, `nl`) a `Subject:` line, a blank line, then the
//! body, with `{placeholders}` filled in per notice. The shipped texts are built into the
//! binary; `[notify] templates` names a folder whose `en.txt` / `nl.txt` override them.

use std::collections::HashMap;
use std::path::Path;

use crate::domains::Language;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 7] = [
    "old_address",
    "new_address",
    "addresses",
    "retired_domain",
    "organisation",
    "retention",
    "received_at",
];

/// Placeholders whose values the sending side can choose (the retired address is any local
/// part at a catch-all, the new address may reuse it): they are refused in the Subject,
/// which mail clients show before anything else, and quoted in the body only when plain.
pub const NOT_IN_SUBJECT: [&str; 3] = ["old_address", "new_address", "addresses"];

/// `{message_id}` was removed: the original Message-ID is the sender's text, free enough to
/// hold a link (`<https://evil.example/x@y>`) that mail clients show as one. It still goes
/// into `In-Reply-To` when plain, where nobody reads it as text.
const REMOVED: [&str; 1] = ["message_id"];

/// Why a template was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("notice template {path}: {message}")]
    Invalid { path: String, message: String },
    /// The template file exists but could not be read.
    #[error("notice template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// One language's template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub body: String,
}

/// The templates for every language, loaded and checked at start.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    by_language: HashMap<&'static str, Template>,
}

/// The shipped texts (`config/notices/`), compiled in so that a gateway started from any
/// directory, or from a package, has them.
const BUILT_IN: [(Language, &str); 2] = [
    (Language::En, include_str!("../../config/notices/en.txt")),
    (Language::Nl, include_str!("../../config/notices/nl.txt")),
];

impl Templates {
    /// The built-in English and Dutch templates.
    pub fn built_in() -> Self {
        let by_language = BUILT_IN
            .iter()
            .map(|(language, text)| {
                let template = Template::parse(text)
                    .expect("the built-in templates are checked by shipped_templates_are_valid");
                (language.code(), template)
            })
            .collect();
        Self { by_language }
    }

    /// The built-in templates, each replaced by `DIR/en.txt` or `DIR/nl.txt` where `dir` has
    /// one; `None` keeps them all. The folder itself must exist, so that a mistyped path is
    /// an error rather than a silent fallback.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut templates = Self::built_in();
        let Some(dir) = dir else {
            return Ok(templates);
        };
        if !dir.is_dir() {
            return Err(TemplateError::Invalid {
                path: dir.display().to_string(),
                message: "not a folder (it should hold en.txt and/or nl.txt)".to_owned(),
            });
        }
        for (language, _) in BUILT_IN {
            let path = dir.join(format!("{}.txt", language.code()));
            let invalid = |message: String| TemplateError::Invalid {
                path: path.display().to_string(),
                message,
            };
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(TemplateError::Read {
                        path: path.display().to_string(),
                        source,
                    });
                }
            };
            templates
                .by_language
                .insert(language.code(), Template::parse(&text).map_err(invalid)?);
        }
        Ok(templates)
    }

    pub fn get(&self, language: Language) -> Option<&Template> {
        self.by_language.get(language.code())
    }
}

impl Template {
    /// Parses template text; unknown placeholders are refused so a typo never reaches a
    /// sender.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.replace("\r\n", "\n");
        let (head, body) = text
            .split_once("\n\n")
            .ok_or("expected a Subject: line, a blank line, then the body")?;
        let subject = head
            .strip_prefix("Subject:")
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.contains('\n'))
            .ok_or("the first line must be \"Subject: …\" (one line)")?;
        for (part, is_subject) in [(subject, true), (body, false)] {
            let mut rest = part;
            while let Some(start) = rest.find('{') {
                let after = &rest[start + 1..];
                let end = after.find('}').ok_or("a '{' without '}'")?;
                let name = &after[..end];
                if REMOVED.contains(&name) {
                    return Err(format!(
                        "{{{name}}} was removed: the original Message-ID is text the sender \
                         chose and can hold a link; {{received_at}} names the message instead"
                    ));
                }
                if !PLACEHOLDERS.contains(&name) {
                    return Err(format!(
                        "unknown placeholder {{{name}}}; known: {}",
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
                    ));
                }
                if is_subject && NOT_IN_SUBJECT.contains(&name) {
                    return Err(format!(
                        "{{{name}}} is not allowed in the Subject: its value can be chosen by \
                         whoever sent the message; the Subject may use {{organisation}}, \
                         {{retired_domain}}, {{retention}} and {{received_at}}"
                    ));
                }
                rest = &after[end + 1..];
            }
        }
        Ok(Self {
            subject: subject.to_owned(),
            body: body.trim_end().to_owned(),
        })
    }

    /// Fills in the placeholders.
    pub fn fill(&self, values: &HashMap<&str, String>) -> (String, String) {
        let fill = |text: &str| {
            let mut out = text.to_owned();
            for name in PLACEHOLDERS {
                if let Some(value) = values.get(name) {
                    out = out.replace(&format!("{{{name}}}"), value);
                }
            }
            out
        };
        (fill(&self.subject), fill(&self.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_fill() {
        let t = Template::parse(
            "Subject: {retired_domain} moved\n\n{old_address}: write to {new_address}.\n",
        )
        .expect("valid");
        let values = HashMap::from([
            ("old_address", "a@old".to_owned()),
            ("new_address", "b@new".to_owned()),
            ("retired_domain", "old".to_owned()),
        ]);
        assert_eq!(
            t.fill(&values),
            ("old moved".to_owned(), "a@old: write to b@new.".to_owned())
        );
        assert!(
            Template::parse("Subject: x\n\n{subject}")
                .expect_err("unknown")
                .contains("{subject}")
        );
        assert!(Template::parse("no subject\n\nbody").is_err());
        assert!(Template::parse("Subject: x\n\nopen {brace").is_err());
    }

    #[test]
    fn the_senders_message_id_is_no_placeholder() {
        for part in [
            "Subject: {message_id}\n\nbody\n",
            "Subject: s\n\nid {message_id}\n",
        ] {
            let err = Template::parse(part).expect_err("refused");
            assert!(err.contains("{message_id} was removed"), "{err}");
        }
    }

    #[test]
    fn sender_chosen_values_are_refused_in_the_subject() {
        for name in NOT_IN_SUBJECT {
            let err = Template::parse(&format!("Subject: About {{{name}}}\n\nbody\n"))
                .expect_err("refused");
            assert!(
                err.contains(&format!("{{{name}}} is not allowed in the Subject")),
                "{err}"
            );
            Template::parse(&format!("Subject: fixed\n\nbody {{{name}}}\n"))
                .expect("allowed in the body");
        }
        for name in ["organisation", "retired_domain", "retention", "received_at"] {
            Template::parse(&format!("Subject: {{{name}}}\n\nbody\n")).expect("allowed");
        }
    }

    #[test]
    fn overrides_replace_one_language_and_a_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("nl.txt"),
            "Subject: Eigen tekst\n\nHallo.\n",
        )
        .expect("write");
        let templates = Templates::load(Some(dir.path())).expect("loads");
        assert_eq!(
            templates.get(Language::Nl).expect("nl").subject,
            "Eigen tekst"
        );
        assert_eq!(
            templates.get(Language::En),
            Templates::built_in().get(Language::En),
            "English keeps the built-in text"
        );
        let missing = Templates::load(Some(&dir.path().join("nope"))).expect_err("refused");
        assert!(missing.to_string().contains("not a folder"), "{missing}");
        std::fs::write(dir.path().join("en.txt"), "Subject: {old_address}\n\nx\n").expect("write");
        let bad = Templates::load(Some(dir.path())).expect_err("refused");
        assert!(bad.to_string().contains("en.txt"), "{bad}");
    }

    #[test]
    fn shipped_templates_are_valid() {
        let templates = Templates::built_in();
        assert!(
            templates
                .get(Language::Nl)
                .expect("nl")
                .body
                .contains("{addresses}")
        );
        assert!(
            templates
                .get(Language::En)
                .expect("en")
                .body
                .contains("{addresses}")
        );
    }

    #[test]
    fn a_template_that_cannot_be_read_keeps_the_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A folder where en.txt should be: it exists, but does not read as text.
        std::fs::create_dir(dir.path().join("en.txt")).expect("mkdir");
        let error = Templates::load(Some(dir.path())).expect_err("a folder is no template");
        assert!(matches!(error, TemplateError::Read { .. }), "{error:?}");
        assert!(
            std::error::Error::source(&error)
                .expect("a source")
                .is::<std::io::Error>()
        );
    }
}
