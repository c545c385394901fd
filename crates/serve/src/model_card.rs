//! The models `/v1/models` lists (the served model and runtime-loaded adapters).

/// A model `/v1/models` lists.
#[derive(Debug, Clone)]
pub struct ModelCard {
    pub id: String,
    /// The model an adapter was loaded on (None for the served model).
    pub parent: Option<String>,
    pub root: String,
    pub created: u64,
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
