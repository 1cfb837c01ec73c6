//! Backup support: every record of every tree, and loading them into an empty store. The
//! file format around them is `backup`'s; the tree names are the store's (`trees!`).

use super::{Store, StoreError};

impl Store {
    /// Every (tree, key, value), tree by tree in key order.
    pub fn export_entries(
        &self,
    ) -> impl Iterator<Item = Result<(&'static str, Vec<u8>, Vec<u8>), StoreError>> + '_ {
        self.trees.named().into_iter().flat_map(|(name, tree)| {
            tree.iter().map(move |item| {
                let (k, v) = item?;
                Ok((name, k.to_vec(), v.to_vec()))
            })
        })
    }

    /// True when no account, session, camera or audit entry exists (a fresh store holds
    /// only its schema version).
    pub fn is_empty(&self) -> bool {
        self.trees
            .named()
            .iter()
            .filter(|(name, _)| *name != "meta")
            .all(|(_, tree)| tree.is_empty())
    }

    /// Writes one exported record back. Only for restoring into an empty store, which
    /// `backup::restore` then closes: nothing derived from the records (the audit id counter)
    /// outlives the import in this `Store`.
    pub fn import_entry(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let target = self
            .trees
            .named()
            .into_iter()
            .find(|(name, _)| *name == tree)
            .map(|(_, t)| t)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown tree {tree:?} in backup")))?;
        target.insert(key, value)?;
        self.cache.written();
        Ok(())
    }
}
