//! Turning a conversation into a prompt for a loaded model: pick its chat template (the
//! user's custom one, the GGUF's own, or our built-in for its family) and render it.

use anyhow::{Context as _, Result};
use chat::{ChatMessage, ChatTemplate, RenderContext, TemplateOrigin};
use engine::{ModelHandle, Prompt};
use std::collections::HashMap;

pub struct ChatFormat {
    template: ChatTemplate,
    pub origin: TemplateOrigin,
    bos: String,
    eos: String,
    /// End-of-turn markers of the built-in family, for models whose EOG tokens miss them.
    pub stops: Vec<String>,
}

impl ChatFormat {
    /// Chooses and compiles the template for `model`.
    pub async fn for_model(model: &ModelHandle, custom: Option<&str>) -> Result<Self> {
        let info = model.info();
        let known = special_tokens(model, &info.architecture).await;
        let has_token = |t: &str| known.get(t).copied().unwrap_or(false);
        let selected = chat::select(
            custom,
            info.chat_template.as_deref(),
            &info.architecture,
            &has_token,
        );
        let template = selected
            .compile()
            .with_context(|| format!("compiling the {} chat template", selected.origin))?;
        let stops = match selected.origin {
            TemplateOrigin::Builtin(family) => family
                .stop_strings()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            _ => Vec::new(),
        };
        Ok(ChatFormat {
            template,
            origin: selected.origin,
            bos: info.bos_token.clone().unwrap_or_default(),
            eos: info.eos_token.clone().unwrap_or_default(),
            stops,
        })
    }

    /// The prompt for `messages`, ending with the assistant's turn header.
    pub fn prompt(&self, messages: &[ChatMessage]) -> Result<Prompt> {
        let ctx = RenderContext {
            bos_token: &self.bos,
            eos_token: &self.eos,
            ..RenderContext::new(messages)
        };
        let text = self.template.render(&ctx)?;
        // Templates that write the BOS text themselves must not get a second one from the
        // tokenizer (llama.cpp warns about exactly this double BOS).
        let add_special = self.bos.is_empty() || !text.starts_with(&self.bos);
        Ok(Prompt::Text {
            text,
            add_special,
            parse_special: true,
        })
    }
}

/// Which of the marker tokens the family detection asks about are single tokens in this
/// model's vocabulary. The questions depend on earlier answers, so ask until no new
/// question comes up.
async fn special_tokens(model: &ModelHandle, arch: &str) -> HashMap<String, bool> {
    let mut known: HashMap<String, bool> = HashMap::new();
    loop {
        let asked = std::cell::RefCell::new(Vec::new());
        chat::detect_family(arch, &|t: &str| match known.get(t) {
            Some(&yes) => yes,
            None => {
                asked.borrow_mut().push(t.to_string());
                false
            }
        });
        let asked = asked.into_inner();
        if asked.is_empty() {
            return known;
        }
        for t in asked {
            let single = matches!(model.tokenize(&t, false, true).await, Ok(ids) if ids.len() == 1);
            known.insert(t, single);
        }
    }
}
