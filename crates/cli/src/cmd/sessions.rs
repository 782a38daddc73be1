//! `sessions list|show|export|rm`: the stored chat sessions, read from the database in
//! process through `service::Sessions` (the server's own rules). These commands may run next
//! to a live server, so they never mark its running answers interrupted.

use crate::args::SessionsCommand;
use crate::context::Context;
use crate::output;
use anyhow::{Result, bail};
use service::Sessions;
use service::sessions::View;
use std::process::ExitCode;
use std::sync::Arc;

/// The sessions of the data folder's database.
pub fn open(ctx: &Context) -> Result<Arc<Sessions>> {
    let store = Arc::new(ctx.store()?);
    Ok(Sessions::new(store, ctx.config.sessions.clone(), false)?)
}

pub fn run(ctx: &Context, cmd: SessionsCommand) -> Result<ExitCode> {
    let sessions = open(ctx)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cmd {
            SessionsCommand::List(a) => {
                let page = sessions.list(a.search, Some(a.limit), None).await?;
                if a.json.json {
                    return output::json(&page);
                }
                let mut t = output::table(["ID", "TITLE", "MODELS", "UPDATED"]);
                for s in &page.sessions {
                    t.add_row([
                        s.id.clone(),
                        s.title.clone(),
                        s.models.join(", "),
                        humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH
                                + std::time::Duration::from_secs(s.updated_at.max(0) as u64),
                        )
                        .to_string(),
                    ]);
                }
                println!("{t}");
                if page.total > page.sessions.len() as u64 {
                    eprintln!("({} of {} sessions; --limit shows more)", page.sessions.len(), page.total);
                }
                Ok(())
            }
            SessionsCommand::Show(a) => {
                let view = if a.tree { View::Tree } else { View::Active };
                let h = sessions.history(&a.id, view).await?;
                if a.json.json {
                    return output::json(&h);
                }
                print!(
                    "{}",
                    service::sessions::transfer::markdown(&h.session, &h.messages)
                );
                Ok(())
            }
            SessionsCommand::Export(a) => {
                let text = match a.format.as_str() {
                    "json" => serde_json::to_string_pretty(&sessions.export_json(&a.id).await?)?,
                    "markdown" | "md" => sessions.export_markdown(&a.id).await?,
                    other => bail!("unknown format {other:?}: json or markdown"),
                };
                match a.output {
                    Some(path) => std::fs::write(&path, text)?,
                    None => println!("{text}"),
                }
                Ok(())
            }
            SessionsCommand::Rm(a) => {
                sessions.delete(&a.id).await?;
                eprintln!("deleted {}", a.id);
                Ok(())
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
