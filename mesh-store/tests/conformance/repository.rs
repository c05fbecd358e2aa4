use mesh_store::{Direction, Query, Record, Repository, StoreError, TenantWrites};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::unique;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub rank: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl Record for Item {
    const COLLECTION: &'static str = "conformance_items";
    const INDEXED: &'static [&'static str] = &["status", "rank"];
    fn id(&self) -> Uuid {
        self.id
    }
}

fn item(i: i64) -> Item {
    Item {
        id: Uuid::now_v7(),
        name: format!("item {i}"),
        status: ["a", "b", "c"][(i % 3) as usize].to_owned(),
        rank: (i * 7) % 13,
        tag: (i % 4 == 0).then(|| format!("t{}", i % 5)),
    }
}

pub async fn crud<R: Repository<Item>>(repo: &R) {
    let tenant = unique("t");
    let mut it = item(1);
    let created = repo.create(&tenant, &it).await.unwrap();
    assert_eq!((created.version, &created.record), (1, &it));
    let got = repo.get(&tenant, it.id).await.unwrap().unwrap();
    assert_eq!((got.version, &got.record), (1, &it));
    assert!(matches!(
        repo.create(&tenant, &it).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    // Several at once: each new one stored at version 1, a taken id refused, in order.
    let batch = [item(2), it.clone(), item(3)];
    let results = repo.create_many(&tenant, &batch).await.unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap().record, batch[0]);
    assert!(matches!(results[1], Err(StoreError::AlreadyExists { .. })));
    assert_eq!(results[2].as_ref().unwrap().version, 1);
    assert_eq!(
        repo.get(&tenant, batch[2].id)
            .await
            .unwrap()
            .unwrap()
            .record,
        batch[2]
    );
    assert!(repo.create_many(&tenant, &[]).await.unwrap().is_empty());
    // Several deleted at once: those that exist, in this tenant only.
    let other = unique("t");
    repo.create(&other, &batch[0]).await.unwrap();
    let gone = [batch[0].id, Uuid::now_v7(), batch[2].id];
    assert_eq!(repo.delete_many(&tenant, &gone).await.unwrap(), 2);
    assert!(repo.get(&tenant, batch[2].id).await.unwrap().is_none());
    assert!(repo.get(&other, batch[0].id).await.unwrap().is_some());
    assert_eq!(repo.delete_many(&tenant, &gone).await.unwrap(), 0);
    assert_eq!(repo.delete_many(&tenant, &[]).await.unwrap(), 0);

    it.name = "renamed".into();
    let updated = repo.update(&tenant, &it, 1).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(
        repo.get(&tenant, it.id).await.unwrap().unwrap().record.name,
        "renamed"
    );
    match repo.update(&tenant, &it, 1).await {
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
        }) => {}
        other => panic!("stale update: {other:?}"),
    }
    assert!(repo.delete(&tenant, it.id).await.unwrap());
    assert!(repo.get(&tenant, it.id).await.unwrap().is_none());
    assert!(!repo.delete(&tenant, it.id).await.unwrap());
    assert!(matches!(
        repo.update(&tenant, &it, 2).await,
        Err(StoreError::NotFound { .. })
    ));

    // Several updates at once: each checked against its own version, in order.
    let (mut a, mut b, gone) = (item(10), item(11), item(12));
    repo.create(&tenant, &a).await.unwrap();
    repo.create(&tenant, &b).await.unwrap();
    repo.update(&tenant, &b, 1).await.unwrap();
    a.name = "a2".into();
    b.name = "b3".into();
    let results = repo
        .update_many(
            &tenant,
            &[(a.clone(), 1), (gone.clone(), 1), (b.clone(), 1)],
        )
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().version, 2);
    assert!(matches!(results[1], Err(StoreError::NotFound { .. })));
    assert!(matches!(
        results[2],
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2
        })
    ));
    assert_eq!(
        repo.get(&tenant, a.id).await.unwrap().unwrap().record.name,
        "a2"
    );
    assert_ne!(
        repo.get(&tenant, b.id).await.unwrap().unwrap().record.name,
        "b3"
    );
    let results = repo.update_many(&tenant, &[(b.clone(), 2)]).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().version, 3);
    assert!(repo.update_many(&tenant, &[]).await.unwrap().is_empty());
    // One record twice in a batch is refused whole.
    assert!(matches!(
        repo.update_many(&tenant, &[(a.clone(), 2), (a.clone(), 3)])
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(repo.get(&tenant, a.id).await.unwrap().unwrap().version, 2);
}

/// Pages through `query` and returns every record id in order.
async fn all_pages<R: Repository<Item>>(repo: &R, tenant: &str, mut query: Query) -> Vec<Item> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = repo.list(tenant, &query).await.unwrap();
        assert!(page.items.len() <= query.limit);
        out.extend(page.items.into_iter().map(|v| v.record));
        match page.next {
            Some(next) => query = query.after(next),
            None => return out,
        }
    }
    panic!("paging did not end");
}

pub async fn filters_ordering_and_paging<R: Repository<Item>>(repo: &R) {
    let tenant = unique("t");
    let mut items = Vec::new();
    for i in 0..57 {
        let it = item(i);
        repo.create(&tenant, &it).await.unwrap();
        items.push(it);
    }
    // Creation order (ids are time-ordered), pages of 5.
    let listed = all_pages(repo, &tenant, Query::new().limit(5)).await;
    assert_eq!(listed, items);

    // Equality filters.
    let b: Vec<Item> = items.iter().filter(|i| i.status == "b").cloned().collect();
    assert_eq!(
        all_pages(repo, &tenant, Query::new().filter("status", "b").limit(4)).await,
        b
    );
    let b3: Vec<Item> = b.iter().filter(|i| i.rank == 3).cloned().collect();
    assert_eq!(
        all_pages(
            repo,
            &tenant,
            Query::new()
                .filter("status", "b")
                .filter("rank", 3)
                .limit(4)
        )
        .await,
        b3
    );
    assert!(
        repo.list(&tenant, &Query::new().filter("status", "zzz"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Ordering by a field (ties by id), both directions, across pages.
    let mut by_rank = items.clone();
    by_rank.sort_by(|x, y| x.rank.cmp(&y.rank).then(x.id.cmp(&y.id)));
    assert_eq!(
        all_pages(
            repo,
            &tenant,
            Query::new().order_by("rank", Direction::Ascending).limit(6)
        )
        .await,
        by_rank
    );
    by_rank.reverse();
    assert_eq!(
        all_pages(
            repo,
            &tenant,
            Query::new()
                .order_by("rank", Direction::Descending)
                .limit(7)
        )
        .await,
        by_rank
    );

    // A field some records lack sorts as null, first.
    let mut by_tag = items.clone();
    by_tag.sort_by(|x, y| x.tag.cmp(&y.tag).then(x.id.cmp(&y.id)));
    assert_eq!(
        all_pages(
            repo,
            &tenant,
            Query::new().order_by("tag", Direction::Ascending).limit(9)
        )
        .await,
        by_tag
    );

    // Bad input is a typed error.
    for bad in [
        Query::new().limit(Query::MAX_LIMIT + 1),
        Query::new().after("not a cursor"),
        Query::new().filter("bad field", 1),
        Query::new().order_by("x'; drop table mesh_records; --", Direction::Ascending),
    ] {
        assert!(
            matches!(repo.list(&tenant, &bad).await, Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }
}

pub async fn tenant_isolation<R: Repository<Item>>(repo: &R) {
    let (a, b) = (unique("a"), unique("b"));
    let it = item(2);
    repo.create(&a, &it).await.unwrap();
    // Every operation from tenant B on tenant A's record fails or finds nothing.
    assert!(repo.get(&b, it.id).await.unwrap().is_none());
    assert!(repo.list(&b, &Query::new()).await.unwrap().items.is_empty());
    assert!(
        repo.list(&b, &Query::new().filter("status", json!(it.status)))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        repo.update(&b, &it, 1).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(!repo.delete(&b, it.id).await.unwrap());
    let mut theirs = it.clone();
    theirs.name = "b's own".into();
    repo.create(&b, &theirs).await.unwrap();
    repo.update(&b, &theirs, 1).await.unwrap();
    assert!(
        repo.delete(&b, it.id).await.unwrap(),
        "B deletes its own record with that id"
    );
    let a_view = repo.get(&a, it.id).await.unwrap().unwrap();
    assert_eq!(
        (a_view.version, a_view.record),
        (1, it),
        "A's record is untouched"
    );
}

/// Batches racing for one record: each batch's other records change, and exactly one
/// batch changes the shared one — the others are told `Conflict`, as single updates
/// would be.
pub async fn concurrent_updates_of_a_record_one_wins<R: Repository<Item>>(repo: &R) {
    let tenant = unique("t");
    let shared = item(100);
    repo.create(&tenant, &shared).await.unwrap();
    let own: Vec<Item> = (0..4).map(|i| item(200 + i)).collect();
    for it in &own {
        repo.create(&tenant, it).await.unwrap();
    }
    let batch = |i: usize| {
        let mut mine = shared.clone();
        mine.name = format!("by {i}");
        vec![(own[i].clone(), 1), (mine, 1)]
    };
    let (b0, b1, b2, b3) = (batch(0), batch(1), batch(2), batch(3));
    let (r0, r1, r2, r3) = tokio::join!(
        repo.update_many(&tenant, &b0),
        repo.update_many(&tenant, &b1),
        repo.update_many(&tenant, &b2),
        repo.update_many(&tenant, &b3),
    );
    let mut won = 0;
    for results in [r0, r1, r2, r3] {
        let results = results.unwrap();
        assert_eq!(results[0].as_ref().unwrap().version, 2);
        match &results[1] {
            Ok(v) => {
                assert_eq!(v.version, 2);
                won += 1;
            }
            Err(StoreError::Conflict {
                expected: 1,
                actual: 2,
            }) => {}
            other => panic!("the shared record: {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let stored = repo.get(&tenant, shared.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert!(stored.record.name.starts_with("by "));
}

/// `write_many` creates and updates together, each record reported as `create_many`
/// and `update_many` would.
pub async fn write_many_creates_and_updates<R: Repository<Item>>(repo: &R) {
    let tenant = unique("t");
    let old = item(1);
    repo.create(&tenant, &old).await.unwrap();
    let mut changed = old.clone();
    changed.name = "changed".into();
    let fresh = vec![item(2), item(3), old.clone()];
    let stale = item(4);
    let (created, updated) = repo
        .write_many(&tenant, &fresh, &[(changed.clone(), 1), (stale, 1)])
        .await
        .unwrap();
    assert_eq!(created[0].as_ref().unwrap().version, 1);
    assert_eq!(created[1].as_ref().unwrap().version, 1);
    assert!(matches!(created[2], Err(StoreError::AlreadyExists { .. })));
    assert_eq!(updated[0].as_ref().unwrap().version, 2);
    assert!(matches!(
        updated[1],
        Err(StoreError::NotFound { .. } | StoreError::Conflict { .. })
    ));
    let back = repo.get(&tenant, old.id).await.unwrap().unwrap();
    assert_eq!((back.record.name.as_str(), back.version), ("changed", 2));

    // Large batches (a backend may split them into several statements): every record
    // answered in its place, one id twice refused the second time, a stale version
    // refused on its own.
    let many: Vec<Item> = (0..1_100).map(item).collect();
    let mut fresh = many[..700].to_vec();
    fresh.insert(600, many[10].clone());
    let (created, _) = repo.write_many(&tenant, &fresh, &[]).await.unwrap();
    assert_eq!(created.len(), 701);
    for (i, result) in created.iter().enumerate() {
        match (i, result) {
            (600, Err(StoreError::AlreadyExists { id, .. })) => assert_eq!(*id, many[10].id),
            (_, Ok(saved)) => assert_eq!((saved.version, &saved.record), (1, &fresh[i])),
            (_, other) => panic!("record {i}: {other:?}"),
        }
    }
    let mut updates: Vec<(Item, u64)> = many[..700]
        .iter()
        .map(|it| {
            let mut it = it.clone();
            it.name.push_str(" again");
            (it, 1)
        })
        .collect();
    updates[550].1 = 5;
    let (created, updated) = repo
        .write_many(&tenant, &many[700..], &updates)
        .await
        .unwrap();
    assert!(
        created
            .iter()
            .all(|r| r.as_ref().is_ok_and(|s| s.version == 1))
    );
    for (i, result) in updated.iter().enumerate() {
        match (i, result) {
            (
                550,
                Err(StoreError::Conflict {
                    expected: 5,
                    actual: 1,
                }),
            ) => {}
            (_, Ok(saved)) => assert_eq!((saved.version, &saved.record), (2, &updates[i].0)),
            (_, other) => panic!("update {i}: {other:?}"),
        }
    }
    let back = repo.get(&tenant, many[699].id).await.unwrap().unwrap();
    assert_eq!(
        (back.record.name.as_str(), back.version),
        ("item 699 again", 2)
    );
    assert_eq!(
        repo.get(&tenant, many[550].id)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

/// `write_tenants` writes each tenant's share as `write_many` would, answers in the
/// order asked, keeps every share in its own tenant, and refuses a share that names
/// a record twice without losing the others.
pub async fn write_tenants_keeps_each_share_in_its_tenant<R: Repository<Item>>(repo: &R) {
    let (a, b, c) = (unique("t"), unique("t"), unique("t"));
    let old = item(1);
    repo.create(&b, &old).await.unwrap();
    let mut changed = old.clone();
    changed.name = "changed in b".into();
    let mut twice = item(9);
    repo.create(&c, &twice).await.unwrap();
    twice.name = "twice".into();
    let for_a = vec![item(2), item(3)];
    let for_b = vec![item(4)];
    let updates_b = vec![(changed.clone(), 1)];
    let updates_c = vec![(twice.clone(), 1), (twice.clone(), 1)];
    let results = repo
        .write_tenants(&[
            TenantWrites {
                tenant: &a,
                creates: &for_a,
                updates: &[],
            },
            TenantWrites {
                tenant: &c,
                creates: &[],
                updates: &updates_c,
            },
            TenantWrites {
                tenant: &b,
                creates: &for_b,
                updates: &updates_b,
            },
        ])
        .await;
    assert_eq!(results.len(), 3);
    let (created_a, updated_a) = results[0].as_ref().unwrap();
    assert!(updated_a.is_empty());
    assert_eq!(created_a.len(), 2);
    assert!(
        created_a
            .iter()
            .all(|r| r.as_ref().is_ok_and(|s| s.version == 1))
    );
    assert!(
        matches!(results[1], Err(StoreError::Invalid(_))),
        "{:?}",
        results[1]
    );
    let (created_b, updated_b) = results[2].as_ref().unwrap();
    assert_eq!(created_b[0].as_ref().unwrap().record, for_b[0]);
    assert_eq!(updated_b[0].as_ref().unwrap().version, 2);

    // Stored, each in its own tenant only; the refused share changed nothing.
    for it in &for_a {
        assert_eq!(repo.get(&a, it.id).await.unwrap().unwrap().record, *it);
        assert!(repo.get(&b, it.id).await.unwrap().is_none());
    }
    assert!(repo.get(&a, for_b[0].id).await.unwrap().is_none());
    let back = repo.get(&b, old.id).await.unwrap().unwrap();
    assert_eq!(
        (back.record.name.as_str(), back.version),
        ("changed in b", 2)
    );
    assert_eq!(repo.get(&c, twice.id).await.unwrap().unwrap().version, 1);
    assert!(repo.write_tenants(&[]).await.is_empty());
}
