//! MCP servers as stored: the name, the server's `mcpServers` entry as JSON (the tools crate
//! parses it; the store only keeps it), and whether it is enabled.

use rusqlite::{Row, params};
use serde_json::{Map, Value};

use crate::db::Store;
use crate::error::StoreError;
use crate::now;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMcpServer {
    pub name: String,
    /// The `mcpServers` entry (`command`/`args`/`env` or `url`/`headers`/`type`).
    pub config: Map<String, Value>,
    pub enabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

fn row(r: &Row<'_>) -> rusqlite::Result<StoredMcpServer> {
    let config: String = r.get(1)?;
    Ok(StoredMcpServer {
        name: r.get(0)?,
        config: match serde_json::from_str(&config) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        enabled: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

impl Store {
    /// Adds or replaces a server by name (keeps its first creation time).
    pub fn put_mcp_server(&self, name: &str, config: &Map<String, Value>, enabled: bool) -> Result<(), StoreError> {
        if name.is_empty() {
            return Err(StoreError::Invalid("an MCP server needs a name".to_owned()));
        }
        let config = Value::Object(config.clone()).to_string();
        let t = now();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO mcp_servers (name, config, enabled, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (name) DO UPDATE SET
                   config = excluded.config, enabled = excluded.enabled, updated_at = excluded.updated_at",
                params![name, config, enabled, t],
            )?;
            Ok(())
        })
    }

    /// Turns a server on or off; false when there is none by that name.
    pub fn set_mcp_server_enabled(&self, name: &str, enabled: bool) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE mcp_servers SET enabled = ?2, updated_at = ?3 WHERE name = ?1",
                params![name, enabled, now()],
            )? > 0)
        })
    }

    /// Forgets a server; false when there was none by that name.
    pub fn delete_mcp_server(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM mcp_servers WHERE name = ?1", [name])? > 0))
    }

    /// Every stored server, by name.
    pub fn mcp_servers(&self) -> Result<Vec<StoredMcpServer>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT name, config, enabled, created_at, updated_at FROM mcp_servers ORDER BY name",
        )?;
        let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_stored_enabled_and_removed() {
        let store = Store::open_in_memory().unwrap();
        let entry: Map<String, Value> = serde_json::from_str(r#"{"command": "npx", "args": ["x"]}"#).unwrap();
        store.put_mcp_server("fs", &entry, true).unwrap();
        store.put_mcp_server("web", &serde_json::from_str(r#"{"url": "http://h/mcp"}"#).unwrap(), false).unwrap();
        let all = store.mcp_servers().unwrap();
        assert_eq!(all.iter().map(|s| (s.name.as_str(), s.enabled)).collect::<Vec<_>>(), [("fs", true), ("web", false)]);
        assert_eq!(all[0].config, entry);
        assert!(store.set_mcp_server_enabled("web", true).unwrap());
        assert!(!store.set_mcp_server_enabled("nope", true).unwrap());
        assert!(store.mcp_servers().unwrap()[1].enabled);
        assert!(store.delete_mcp_server("fs").unwrap());
        assert!(!store.delete_mcp_server("fs").unwrap());
        assert_eq!(store.mcp_servers().unwrap().len(), 1);
        assert!(store.put_mcp_server("", &entry, true).is_err());
    }
}
