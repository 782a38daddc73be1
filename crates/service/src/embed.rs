//! Embeddings through the service layer, like generations: the request takes its place on
//! the model (refused when too many wait) and runs with the caps of `[limits]`, which the
//! engine checks after tokenizing and before computing anything.

use crate::error::ServiceError;
use crate::limits::Ticket;
use crate::models::ModelLease;
use engine::{EmbedRequest, Embedding};

/// Embeddings of `req`'s inputs on the leased model.
pub async fn embed(
    lease: &ModelLease,
    mut req: EmbedRequest,
    mut ticket: Ticket,
) -> Result<Vec<Embedding>, ServiceError> {
    ticket.on_model(lease.id(), lease.handle.info().n_slots)?;
    req.caps = ticket.caps();
    Ok(lease.handle.embed(req).await?)
}
