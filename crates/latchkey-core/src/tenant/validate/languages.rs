//! The checks of the languages a tenant offers and of its custom text:
//! every language one latchkey speaks, every prompt, screen and key one the
//! bundles have, every text within bounds.

use super::*;
use crate::services::language::{Language, check_custom_text};

/// The longest custom text, in characters.
const MAX_TEXT: usize = 2_000;

impl<'a> Validator<'a> {
    pub(super) fn languages(&self) -> Check {
        let locales = &self.file.tenant.enabled_locales;
        self.unique(indexed("tenant.enabled_locales", locales, |l| *l), |l| {
            format!("duplicate language {l}")
        })?;
        for (tag, prompts) in &self.file.prompts.custom_text {
            let base = key_path("prompts.custom_text", tag);
            self.ensure(
                Language::from_tag(tag).is_some(),
                base.clone(),
                format!(
                    "{tag:?} is not a language latchkey speaks; one of: {}",
                    Language::ALL.map(Language::tag).join(", ")
                ),
            )?;
            for (prompt, screens) in prompts {
                let prompt_path = key_path(&base, prompt);
                for (screen, keys) in screens {
                    let screen_path = key_path(&prompt_path, screen);
                    for (key, text) in keys {
                        let path = key_path(&screen_path, key);
                        if let Err((depth, message)) = check_custom_text(prompt, screen, key) {
                            let at = [&prompt_path, &screen_path, &path][depth.min(2)];
                            return Err(self.error(at.clone(), message));
                        }
                        self.ensure(
                            text.chars().count() <= MAX_TEXT,
                            path.clone(),
                            format!("is longer than {MAX_TEXT} characters"),
                        )?;
                    }
                    self.ensure(!keys.is_empty(), screen_path.clone(), "names no key")?;
                }
            }
        }
        Ok(())
    }
}
