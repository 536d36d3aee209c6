//! Notice templates: one UTF-8 text file per language (`en.txt`, `nl.txt`), a `Subject:`
//! line, a blank line, then the body, with `{placeholders}` filled in per notice.

use std::collections::HashMap;
use std::path::Path;

use crate::domains::Language;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 6] = [
    "old_address",
    "new_address",
    "organisation",
    "retention",
    "received_at",
    "message_id",
];

/// Why a template was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("notice template {path}: {message}")]
    Invalid { path: String, message: String },
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

impl Templates {
    /// Loads `en.txt` and `nl.txt` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let mut by_language = HashMap::new();
        for language in [Language::En, Language::Nl] {
            let path = dir.join(format!("{}.txt", language.code()));
            let invalid = |message: String| TemplateError::Invalid {
                path: path.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
            by_language.insert(language.code(), Template::parse(&text).map_err(invalid)?);
        }
        Ok(Self { by_language })
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
        for part in [subject, body] {
            let mut rest = part;
            while let Some(start) = rest.find('{') {
                let after = &rest[start + 1..];
                let end = after.find('}').ok_or("a '{' without '}'")?;
                let name = &after[..end];
                if !PLACEHOLDERS.contains(&name) {
                    return Err(format!(
                        "unknown placeholder {{{name}}}; known: {}",
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
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
        let t = Template::parse("Subject: {old_address} moved\n\nWrite to {new_address}.\n")
            .expect("valid");
        let values = HashMap::from([
            ("old_address", "a@old".to_owned()),
            ("new_address", "b@new".to_owned()),
        ]);
        assert_eq!(
            t.fill(&values),
            ("a@old moved".to_owned(), "Write to b@new.".to_owned())
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
    fn shipped_templates_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/notices");
        let templates = Templates::load(&dir).expect("shipped templates load");
        assert!(
            templates
                .get(Language::Nl)
                .expect("nl")
                .body
                .contains("{new_address}")
        );
        assert!(
            templates
                .get(Language::En)
                .expect("en")
                .body
                .contains("{new_address}")
        );
    }
}
