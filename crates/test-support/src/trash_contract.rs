//! The metadata store contract of the trash (issue 16), part of
//! [`crate::metadata_contract`] (re-exported there): trash, list, restore with each
//! `on_conflict`, purge now and by the janitor, on every adapter.

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use storage_domain::model::{
    AuditAction, FileRecord, OnConflict, TrashEntry, TrashId, UserId, VersionNumber,
};
use storage_domain::ports::{
    ListEntry, PurgeTrash, RepoError, RestoreTrash, TrashCursor, TrashFile,
};

use crate::metadata_contract::{Store, audit_of, dir, draft, file, lock, upload, user};

fn n(v: u32) -> VersionNumber {
    VersionNumber::new(v).unwrap()
}

fn new_trash_id() -> TrashId {
    TrashId::from_uuid(uuid::Uuid::now_v7())
}

/// Moves `f` to the trash as `actor`.
pub async fn trash(store: &Store, f: &FileRecord, actor: &UserId) -> Result<TrashEntry, RepoError> {
    store
        .trash_file(TrashFile {
            file_id: f.id,
            trash_id: new_trash_id(),
            actor: actor.clone(),
            audit: draft(AuditAction::Trash, actor, &f.path),
        })
        .await
}

/// The restore of `entry` (to `target`, or its path) as `actor`.
pub fn restore_cmd(
    entry: &TrashEntry,
    target: Option<&str>,
    on_conflict: OnConflict,
    actor: &UserId,
) -> RestoreTrash {
    let target = target.map(file);
    let at = target.clone().unwrap_or_else(|| entry.file.path.clone());
    // The occupant's trashing comes first: its event's id sorts below the restore's.
    let replace_audit = draft(AuditAction::Trash, actor, &at);
    RestoreTrash {
        trash_id: entry.trash_id,
        target,
        on_conflict,
        actor: actor.clone(),
        replaced_trash_id: new_trash_id(),
        audit: draft(AuditAction::TrashRestore, actor, &at),
        replace_audit,
    }
}

fn purge_cmd(entry: &TrashEntry, due_after: Option<Duration>) -> PurgeTrash {
    PurgeTrash {
        trash_id: entry.trash_id,
        due_after,
        audit: draft(AuditAction::Purge, &user("janitor"), &entry.file.path),
    }
}

/// A trashed file leaves the namespace with every version and its tags: not found by path, by
/// id or by version id, not listed, its lock gone, its path free for a new file; the entry
/// keeps it whole. Another user's lock refuses; the trashing is audited on the path.
pub async fn trash_moves_a_file_out_of_the_namespace(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/t/a.txt");
    let (_, v1) = upload(&store, &path, &alice).await;
    let (f, v2) = upload(&store, &path, &alice).await;
    lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        trash(&store, &f, &bob).await,
        Err(RepoError::FileLocked(l)) if l.holder == alice
    ));
    assert!(
        store.find_file(&path).await.unwrap().is_some(),
        "refused: nothing moved"
    );

    let entry = trash(&store, &f, &alice).await.unwrap();
    assert_eq!(entry.versions, 2);
    assert_eq!((entry.file.id, entry.file.version), (f.id, n(2)));
    assert_eq!(entry.trashed_by, alice);
    assert_eq!(store.find_file(&path).await.unwrap(), None);
    assert_eq!(store.find_file_by_id(f.id).await.unwrap(), None);
    assert_eq!(store.find_version(v1.id).await.unwrap(), None);
    assert_eq!(store.find_version(v2.id).await.unwrap(), None);
    let listed = store
        .list_children(&dir("/projects/p1/t/"), None, 100)
        .await
        .unwrap();
    assert!(listed.is_empty(), "not listed: {listed:?}");
    let top = store
        .list_children(&dir("/projects/p1/"), None, 100)
        .await
        .unwrap();
    assert!(
        !top.iter()
            .any(|e| matches!(e, ListEntry::Directory { name } if name == "t")),
        "no directory left for it"
    );
    assert!(
        store
            .list_locks(&dir("/projects/p1/"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let found = store.find_trash(entry.trash_id).await.unwrap().unwrap();
    assert_eq!(found.file.path, path);
    assert_eq!(found.file.tags, f.tags);
    assert_eq!(found.versions, 2);
    let events = audit_of(&store, &path).await;
    assert_eq!(events[0].action, AuditAction::Trash);
    assert_eq!(events[0].file_id, Some(f.id));

    // The path is free: a new file, numbered from 1.
    let (again, v) = upload(&store, &path, &bob).await;
    assert_ne!(again.id, f.id);
    assert_eq!(v.number, n(1));
    assert_eq!(
        trash(&store, &f, &alice).await.map(|_| ()),
        Err(RepoError::FileNotFound),
        "already in the trash"
    );
}

/// The trash under a directory (any depth), newest first by `(trashed_at, trash_id)`, in
/// pages that cover every entry once; other directories' entries are not listed.
pub async fn trash_is_listed_newest_first_in_pages(store: Store) {
    let alice = user("alice");
    let mut entries = Vec::new();
    for name in [
        "/projects/p1/d/x.txt",
        "/projects/p1/d/sub/y.txt",
        "/projects/p1/d/z.txt",
    ] {
        let (f, _) = upload(&store, &file(name), &alice).await;
        entries.push(trash(&store, &f, &alice).await.unwrap());
    }
    let (other, _) = upload(&store, &file("/projects/p1/e/w.txt"), &alice).await;
    trash(&store, &other, &alice).await.unwrap();
    let mut expected: Vec<_> = entries.iter().map(|e| (e.trashed_at, e.trash_id)).collect();
    expected.sort();
    expected.reverse();
    let expected: Vec<TrashId> = expected.into_iter().map(|(_, id)| id).collect();

    let all = store
        .list_trash(&dir("/projects/p1/d/"), None, 100)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.trash_id).collect::<Vec<_>>(), expected);
    let first = store
        .list_trash(&dir("/projects/p1/d/"), None, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let last = first.last().unwrap();
    let rest = store
        .list_trash(
            &dir("/projects/p1/d/"),
            Some(TrashCursor {
                trashed_at: last.trashed_at,
                trash_id: last.trash_id,
            }),
            2,
        )
        .await
        .unwrap();
    let paged: Vec<TrashId> = first
        .iter()
        .chain(rest.iter())
        .map(|e| e.trash_id)
        .collect();
    assert_eq!(paged, expected, "two pages cover every entry once");
    assert_eq!(
        store
            .list_trash(&dir("/projects/p1/"), None, 100)
            .await
            .unwrap()
            .len(),
        4
    );
    assert!(
        store
            .list_trash(&dir("/projects/p2/"), None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A restore brings the file back with every version (same ids and numbers): to its path when
/// free; `fail` refuses an occupied path; `rename` takes `name (restored).ext`, then
/// `name (restored 2).ext`; `replace` trashes the occupant (refused when someone else locked
/// it); an explicit target; an unknown entry. Each is audited on the path restored to.
pub async fn restore_from_trash_by_on_conflict(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/r/plan.txt");
    let (f, v1) = upload(&store, &path, &alice).await;
    let (f, v2) = {
        let (f2, v2) = upload(&store, &path, &alice).await;
        assert_eq!(f2.id, f.id);
        (f2, v2)
    };
    // Free path: back where it was, whole.
    let entry = trash(&store, &f, &alice).await.unwrap();
    let back = store
        .restore_trash(restore_cmd(&entry, None, OnConflict::Fail, &bob))
        .await
        .unwrap();
    assert_eq!(
        (back.id, back.path.clone(), back.version),
        (f.id, path.clone(), n(2))
    );
    let versions = store.list_versions(f.id, None, 100).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.id).collect::<Vec<_>>(),
        vec![v2.id, v1.id]
    );
    assert_eq!(store.find_version(v1.id).await.unwrap().unwrap().0.id, f.id);
    assert_eq!(store.find_trash(entry.trash_id).await.unwrap(), None);
    assert_eq!(
        store
            .restore_trash(restore_cmd(&entry, None, OnConflict::Fail, &bob))
            .await
            .map(|_| ()),
        Err(RepoError::FileNotFound),
        "restored once"
    );
    let events = audit_of(&store, &path).await;
    assert_eq!(events[0].action, AuditAction::TrashRestore);
    assert_eq!(events[0].actor, bob);

    // Occupied: fail, then rename twice.
    let entry = trash(&store, &f, &alice).await.unwrap();
    let (occupant, _) = upload(&store, &path, &bob).await;
    assert!(matches!(
        store
            .restore_trash(restore_cmd(&entry, None, OnConflict::Fail, &alice))
            .await,
        Err(RepoError::VersionConflict { .. })
    ));
    assert!(
        store.find_trash(entry.trash_id).await.unwrap().is_some(),
        "refused: kept"
    );
    let renamed = store
        .restore_trash(restore_cmd(&entry, None, OnConflict::Rename, &alice))
        .await
        .unwrap();
    assert_eq!(renamed.path.as_str(), "/projects/p1/r/plan (restored).txt");
    assert_eq!((renamed.id, renamed.version), (f.id, n(2)));
    assert_eq!(
        audit_of(&store, &renamed.path).await[0].action,
        AuditAction::TrashRestore,
        "audited on the path restored to"
    );
    let entry = trash(&store, &renamed, &alice).await.unwrap();
    let renamed = store
        .restore_trash(restore_cmd(
            &entry,
            Some("/projects/p1/r/plan.txt"),
            OnConflict::Rename,
            &alice,
        ))
        .await
        .unwrap();
    assert_eq!(
        renamed.path.as_str(),
        "/projects/p1/r/plan (restored).txt",
        "free again"
    );
    let (_, _) = upload(&store, &file("/projects/p1/r/plan (restored).txt"), &bob).await;
    // That upload added a version to the restored file (same path); trash it and fill the
    // first renamed name with another file to reach the second.
    let current = store
        .find_file(&file("/projects/p1/r/plan (restored).txt"))
        .await
        .unwrap()
        .unwrap();
    let entry = trash(&store, &current, &alice).await.unwrap();
    upload(&store, &file("/projects/p1/r/plan (restored).txt"), &bob).await;
    let second = store
        .restore_trash(restore_cmd(
            &entry,
            Some("/projects/p1/r/plan.txt"),
            OnConflict::Rename,
            &alice,
        ))
        .await
        .unwrap();
    assert_eq!(second.path.as_str(), "/projects/p1/r/plan (restored 2).txt");
    assert_eq!(second.id, f.id);

    // Replace: the occupant goes to the trash in turn; another user's lock on it refuses.
    let entry = trash(&store, &second, &alice).await.unwrap();
    lock(&store, &occupant, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        store
            .restore_trash(restore_cmd(&entry, Some("/projects/p1/r/plan.txt"), OnConflict::Replace, &alice))
            .await,
        Err(RepoError::FileLocked(l)) if l.holder == bob
    ));
    assert!(
        store.find_trash(entry.trash_id).await.unwrap().is_some(),
        "refused: kept"
    );
    let replaced = store
        .restore_trash(restore_cmd(
            &entry,
            Some("/projects/p1/r/plan.txt"),
            OnConflict::Replace,
            &bob,
        ))
        .await
        .unwrap();
    assert_eq!((replaced.id, replaced.path.clone()), (f.id, path.clone()));
    let in_trash = store
        .list_trash(&dir("/projects/p1/r/"), None, 100)
        .await
        .unwrap();
    assert!(
        in_trash
            .iter()
            .any(|e| e.file.id == occupant.id && e.file.path == path),
        "the occupant is in the trash: {in_trash:?}"
    );
    let actions: Vec<_> = audit_of(&store, &path)
        .await
        .iter()
        .take(2)
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, vec![AuditAction::TrashRestore, AuditAction::Trash]);

    // An explicit free target; an unknown entry.
    let entry = trash(&store, &replaced, &alice).await.unwrap();
    let moved = store
        .restore_trash(restore_cmd(
            &entry,
            Some("/projects/p1/elsewhere/plan.txt"),
            OnConflict::Fail,
            &alice,
        ))
        .await
        .unwrap();
    assert_eq!(moved.path.as_str(), "/projects/p1/elsewhere/plan.txt");
    assert_eq!(
        moved.version,
        n(3),
        "with the version added at the renamed path"
    );
    let mut unknown = entry.clone();
    unknown.trash_id = new_trash_id();
    assert_eq!(
        store
            .restore_trash(restore_cmd(&unknown, None, OnConflict::Fail, &alice))
            .await
            .map(|_| ()),
        Err(RepoError::FileNotFound)
    );
}

/// A purge deletes the entry with its versions and queues every object; a second purge finds
/// nothing. The janitor's purge (`due_after`) takes only an entry due at the store's time;
/// `due_trash` lists exactly those; of concurrent purges of one entry exactly one wins.
pub async fn purge_removes_the_entry_and_queues_objects(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/p/old.txt");
    let (_, v1) = upload(&store, &path, &alice).await;
    let (f, v2) = upload(&store, &path, &alice).await;
    let entry = trash(&store, &f, &alice).await.unwrap();
    let day = Duration::from_secs(86_400);
    assert_eq!(
        store.purge_trash(purge_cmd(&entry, Some(day))).await,
        Err(RepoError::FileNotFound),
        "not due yet"
    );
    assert!(store.find_trash(entry.trash_id).await.unwrap().is_some());
    assert!(store.due_trash(day, 100).await.unwrap().is_empty());
    let due = store.due_trash(Duration::ZERO, 100).await.unwrap();
    assert_eq!(
        due.iter().map(|e| e.trash_id).collect::<Vec<_>>(),
        vec![entry.trash_id]
    );

    let queued = store.purge_trash(purge_cmd(&entry, None)).await.unwrap();
    let keys: HashSet<_> = queued.iter().map(|d| d.object_key.clone()).collect();
    assert_eq!(
        keys,
        HashSet::from([v1.object_key.clone(), v2.object_key.clone()])
    );
    assert_eq!(store.find_trash(entry.trash_id).await.unwrap(), None);
    assert_eq!(
        store.purge_trash(purge_cmd(&entry, None)).await.map(|_| ()),
        Err(RepoError::FileNotFound)
    );
    assert_eq!(audit_of(&store, &path).await[0].action, AuditAction::Purge);
    let claimed: HashSet<_> = store
        .claim_deletions(Duration::from_secs(60), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.object_key)
        .collect();
    assert_eq!(claimed, keys, "the janitor's queue holds the objects");

    // Concurrent janitors: each entry purged once.
    let (g, _) = upload(&store, &path, &alice).await;
    let entry = trash(&store, &g, &alice).await.unwrap();
    let purges: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            let cmd = purge_cmd(&entry, Some(Duration::ZERO));
            tokio::spawn(async move { store.purge_trash(cmd).await })
        })
        .collect();
    let mut won = 0;
    for p in purges {
        match p.await.unwrap() {
            Ok(queued) => {
                won += 1;
                assert_eq!(queued.len(), 1);
            }
            Err(RepoError::FileNotFound) => {}
            Err(e) => panic!("purge: {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one purge");
    // Its event linked once into the file's chain (upload, trash, purge).
    let report = crate::metadata_contract::verify_dev(&store, None).await;
    assert_eq!(report.faults, []);
    let chain = crate::metadata_contract::chain_of(&store, g.id).await;
    assert_eq!(
        chain.iter().map(|e| e.action).collect::<Vec<_>>(),
        vec![AuditAction::Upload, AuditAction::Trash, AuditAction::Purge]
    );
}

/// A pinned version keeps its label through the trash: trashed, listed in no page, restored,
/// it is pinned as before (the trash carries every column of a version).
pub async fn a_pin_survives_the_trash(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/r/pinned.txt");
    let (f, v1) = upload(&store, &path, &alice).await;
    upload(&store, &path, &alice).await;
    crate::metadata_contract::set_pin(&store, v1.id, &path, &alice, Some("release 1.0"))
        .await
        .unwrap();
    let entry = trash(&store, &f, &alice).await.unwrap();
    store
        .restore_trash(restore_cmd(&entry, None, OnConflict::Fail, &alice))
        .await
        .unwrap();
    let (_, back) = store.find_version(v1.id).await.unwrap().unwrap();
    assert_eq!(
        back.pinned.as_deref(),
        Some("release 1.0"),
        "the pin came back"
    );
    let page = store.list_versions(f.id, None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|v| v.pinned.clone()).collect::<Vec<_>>(),
        vec![None, Some("release 1.0".to_owned())]
    );
}
