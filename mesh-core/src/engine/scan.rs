//! Reading whole result sets out of a repository, page after page.

use mesh_store::{Query, Record, Repository, StoreError, Versioned};

/// Every record of `tenant` that `query` matches.
pub(crate) async fn every<T: Record, R: Repository<T>>(
    repository: &R,
    tenant: &str,
    query: Query,
) -> Result<Vec<Versioned<T>>, StoreError> {
    let mut query = query.limit(Query::MAX_LIMIT);
    let mut all = Vec::new();
    loop {
        let page = repository.list(tenant, &query).await?;
        all.extend(page.items);
        match page.next {
            Some(next) => query = query.after(next),
            None => return Ok(all),
        }
    }
}

/// Records whose `status` is `status`.
pub(crate) fn with_status(status: &str) -> Query {
    Query::new().filter("status", status)
}
