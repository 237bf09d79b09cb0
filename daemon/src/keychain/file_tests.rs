use super::*;

fn pass(s: &str) -> Passphrase {
    Passphrase::new(Zeroizing::new(s.to_owned()))
}

fn key() -> AccessKey {
    AccessKey::new(
        "file-test-key-id-1",
        SecretString::from("file-test-secret-value"),
    )
}

#[test]
fn seal_open_round_trip_and_the_file_holds_no_secret() {
    let f = KeyFile::seal("laptop", &key(), &pass("correct horse battery")).unwrap();
    let text = serde_json::to_string(&f).unwrap();
    assert!(!text.contains("file-test-secret-value"), "{text}");
    let back = f
        .open(&pass("correct horse battery"), Path::new("x"))
        .unwrap();
    assert_eq!(back.id, "file-test-key-id-1");
    assert_eq!(back.expose_secret(), "file-test-secret-value");
}

#[test]
fn a_wrong_passphrase_or_any_edit_is_refused() {
    let f = KeyFile::seal("laptop", &key(), &pass("correct horse battery")).unwrap();
    assert!(matches!(
        f.open(&pass("correct horse battery!"), Path::new("x")),
        Err(KeychainError::WrongPassphrase(_))
    ));
    let mut renamed = f.clone();
    renamed.profile = "work".into();
    assert!(renamed
        .open(&pass("correct horse battery"), Path::new("x"))
        .is_err());
    let mut other_id = f.clone();
    other_id.access_key_id = "file-test-key-id-2".into();
    assert!(other_id
        .open(&pass("correct horse battery"), Path::new("x"))
        .is_err());
    let mut weaker = f.clone();
    weaker.kdf.t = 1;
    assert!(weaker
        .open(&pass("correct horse battery"), Path::new("x"))
        .is_err());
    let mut huge = f;
    huge.kdf.m_kib = u32::MAX;
    assert!(matches!(
        huge.open(&pass("correct horse battery"), Path::new("x")),
        Err(KeychainError::Corrupt(_))
    ));
}

#[test]
fn a_store_writes_a_private_file_and_reads_through_the_kernel_keyring() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = EncryptedFileStore::new(dir.path().join("keys"));
    assert!(store.get("laptop").unwrap().is_none(), "no file: no key");
    if let Err(e) = store.store("laptop", &key(), &pass("correct horse battery"), None) {
        eprintln!("SKIP: the kernel keyring is not usable here: {e}");
        return;
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("keys")), 0o700);
    assert_eq!(mode(&store.path("laptop")), 0o600);
    assert_eq!(
        store.get("laptop").unwrap().unwrap().expose_secret(),
        "file-test-secret-value"
    );

    assert!(store.lock("laptop").unwrap());
    assert!(matches!(store.get("laptop"), Err(KeychainError::Locked(_))));
    assert!(matches!(
        store.unlock("laptop", &pass("wrong passphrase!"), None),
        Err(KeychainError::WrongPassphrase(_))
    ));
    store
        .unlock("laptop", &pass("correct horse battery"), None)
        .unwrap();
    assert!(store.is_unlocked("laptop").unwrap());
    assert!(store.delete("laptop").unwrap());
    assert!(store.get("laptop").unwrap().is_none());
    assert!(!store.lock("laptop").unwrap(), "delete also locked it");
}
